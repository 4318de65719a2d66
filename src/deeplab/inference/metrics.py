"""mIoU, per-class IoU and pixel accuracy from one confusion matrix accumulated by torchmetrics."""

import torch
from torchmetrics.classification import MulticlassJaccardIndex


class SegmentationMetrics(MulticlassJaccardIndex):
    """torchmetrics' Jaccard index, which accumulates a confusion matrix over the whole set
    (ignore_index pixels dropped) and reduces it across processes, reporting everything derived
    from that one matrix. mIoU averages over classes present in prediction or ground truth."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255, **kwargs):
        super().__init__(num_classes=num_classes, ignore_index=ignore_index, average="macro", **kwargs)

    def compute(self) -> dict[str, torch.Tensor]:
        confmat = self.confmat.double()
        true_positive = confmat.diag()
        union = confmat.sum(0) + confmat.sum(1) - true_positive
        present = union > 0
        iou = torch.where(present, true_positive / union.clamp(min=1), torch.full_like(union, float("nan")))
        total = confmat.sum()
        return {
            "mIoU": iou[present].mean() if present.any() else torch.tensor(float("nan"), dtype=torch.float64),
            "pixel_acc": true_positive.sum() / total if total > 0 else torch.tensor(float("nan"), dtype=torch.float64),
            "per_class_iou": iou,
            "confmat": self.confmat.clone(),
        }
