"""mIoU from the torchmetrics-accumulated matrix against an independent numpy reference."""

import numpy as np
import torch

from deeplab.inference.metrics import SegmentationMetrics
from deeplab.inference.multiscale import predict_probs


def numpy_reference(preds, targets, num_classes, ignore_index):
    confmat = np.zeros((num_classes, num_classes), dtype=np.int64)
    for pred, target in zip(preds, targets, strict=True):
        keep = target != ignore_index
        confmat += np.bincount(num_classes * target[keep] + pred[keep], minlength=num_classes ** 2).reshape(
            num_classes, num_classes)
    tp = np.diag(confmat)
    union = confmat.sum(0) + confmat.sum(1) - tp
    present = union > 0
    return (tp[present] / union[present]).mean(), tp.sum() / confmat.sum()


def test_matches_numpy_with_void_and_absent_classes():
    rng = np.random.default_rng(0)
    num_classes, metric = 8, SegmentationMetrics(8, ignore_index=255)
    preds, targets = [], []
    for _ in range(5):  # batches accumulate into one matrix: not a mean of per-image scores
        target = rng.integers(0, 5, size=(3, 40, 50))  # classes 5..7 never in the ground truth
        target[rng.random(target.shape) < 0.15] = 255
        pred = np.where(rng.random(target.shape) < 0.6, np.clip(target, 0, 4), rng.integers(0, 7, target.shape))
        metric.update(torch.from_numpy(pred), torch.from_numpy(target))
        preds.extend(pred)
        targets.extend(target)
    result = metric.compute()
    miou, pixel_acc = numpy_reference(preds, targets, num_classes, 255)
    assert abs(result["mIoU"].item() - miou) < 1e-6
    assert abs(result["pixel_acc"].item() - pixel_acc) < 1e-6
    assert torch.isnan(result["per_class_iou"][7])  # never predicted nor present: excluded, not zero
    assert result["per_class_iou"][5] == 0  # predicted but absent: counts as zero


def test_predict_probs_averages_scales_and_flips():
    class Mirror(torch.nn.Module):
        """Logits that depend on the column, so flipping is visible."""

        def forward(self, x):
            cols = torch.linspace(-1, 1, x.shape[3]).expand(x.shape[0], 1, x.shape[2], x.shape[3])
            return torch.cat([cols, -cols], dim=1) * 5

    images = torch.zeros(1, 3, 9, 11)
    single = predict_probs(Mirror(), images)
    assert single[0, 0, 0, -1] > 0.99  # class 0 on the right
    flipped = predict_probs(Mirror(), images, flip=True)
    assert torch.allclose(flipped, torch.full_like(flipped, 0.5), atol=1e-6)  # mirror images cancel
    multi = predict_probs(Mirror(), images, scales=(0.5, 1.0, 1.75))
    assert multi.shape == (1, 2, 9, 11)
    assert torch.allclose(multi.sum(1), torch.ones(1, 9, 11))
