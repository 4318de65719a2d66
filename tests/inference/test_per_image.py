"""Per-image counts sum to the split's confusion matrix; the bootstrap interval brackets mIoU and
narrows with more images."""

import numpy as np
import torch

from deeplab.inference.metrics import SegmentationMetrics
from deeplab.inference.per_image import ImageCounts, bootstrap_interval, miou, per_image_rows


def noisy_split(images: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 4, (images, 12, 16), generator=generator)
    target[:, :2] = 255
    flip = torch.rand(target.shape, generator=generator) < 0.3
    pred = torch.where(flip, torch.randint(0, 4, target.shape, generator=generator), target.clamp(max=3))
    return pred, target


def test_per_image_counts_sum_to_the_split():
    pred, target = noisy_split(10)
    counts, metric = ImageCounts(4, 255), SegmentationMetrics(4, ignore_index=255)
    counts.update(pred, target, [f"im{i}" for i in range(10)])
    metric.update(pred, target)
    result = metric.compute()
    confmat = result["confmat"].numpy()
    tp, fp, fn = counts.arrays()
    assert np.array_equal(tp.sum(0), np.diag(confmat))
    assert np.array_equal(fp.sum(0), confmat.sum(0) - np.diag(confmat))
    assert np.array_equal(fn.sum(0), confmat.sum(1) - np.diag(confmat))
    assert miou(tp.sum(0), fp.sum(0), fn.sum(0)) == result["mIoU"].item()
    rows = per_image_rows(counts, ["a", "b", "c", "d"])
    assert [r["image"] for r in rows] == [f"im{i}" for i in range(10)]
    for name in "abcd":  # each class's errors are shared out over the images
        assert abs(sum(r[f"error_share/{name}"] for r in rows) - 1) < 1e-12


def test_the_interval_brackets_miou_and_narrows_with_more_images():
    widths = []
    for images in (10, 40, 160):
        pred, target = noisy_split(images, seed=images)
        counts = ImageCounts(4, 255)
        counts.update(pred, target, [str(i) for i in range(images)])
        tp, fp, fn = counts.arrays()
        point = miou(tp.sum(0), fp.sum(0), fn.sum(0))
        low, high = bootstrap_interval(counts, 1000)
        assert low < point < high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
