"""mIoU, per-class IoU and pixel accuracy from one confusion matrix accumulated by torchmetrics;
the foreground scores of a binary task from the same matrix; per-label scores of a multilabel task."""

import torch
from torchmetrics.classification import MulticlassJaccardIndex, MultilabelStatScores


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


def foreground_scores(confmat: torch.Tensor) -> dict[str, float]:
    """task=binary: the foreground's (class 1's) IoU, Dice (= F1), precision and recall from the
    2 x 2 confusion matrix (rows truth, columns prediction); NaN where a ratio has no pixels."""
    confmat = confmat.double()
    tp, fp, fn = confmat[1, 1], confmat[0, 1], confmat[1, 0]
    return {name: (num / den).item() if den > 0 else float("nan")
            for name, num, den in (("fg_IoU", tp, tp + fp + fn), ("Dice", 2 * tp, 2 * tp + fp + fn),
                                   ("precision", tp, tp + fp), ("recall", tp, tp + fn))}


class LabelMetrics(MultilabelStatScores):
    """task=multilabel: torchmetrics' true/false positives and negatives of each label over the
    whole set (void pixels dropped, label by label), and the scores derived from them."""

    def __init__(self, num_labels: int, ignore_index: int | None = 255, **kwargs):
        super().__init__(num_labels=num_labels, average=None, multidim_average="global", ignore_index=ignore_index,
                         **kwargs)

    def compute(self) -> dict[str, torch.Tensor]:
        tp, fp, tn, fn = (x.double() for x in (self.tp, self.fp, self.tn, self.fn))

        def ratio(num, den):
            return torch.where(den > 0, num / den.clamp(min=1), torch.full_like(den, float("nan")))

        iou = ratio(tp, tp + fp + fn)
        f1 = ratio(2 * tp, 2 * tp + fp + fn)
        present = ~iou.isnan()
        nan = torch.tensor(float("nan"), dtype=torch.float64)
        return {"mIoU": iou[present].mean() if present.any() else nan,
                "mF1": f1[present].mean() if present.any() else nan,
                "pixel_acc": ratio((tp + tn).sum(), (tp + fp + tn + fn).sum()),
                "per_label_iou": iou, "per_label_f1": f1, "per_label_precision": ratio(tp, tp + fp),
                "per_label_recall": ratio(tp, tp + fn)}
