"""Trimap bands and Boundary IoU against direct numpy / OpenCV implementations on hand-made masks."""

import cv2
import numpy as np
import pytest
import torch

from deeplab.inference.boundary import boundary_counts, label_edges, trimap_band
from deeplab.inference.metrics import SegmentationMetrics

VOID = 255


def hand_masks() -> tuple[np.ndarray, np.ndarray]:
    """A square object outlined by a 2-pixel void band on a background, and a prediction that
    gets the object one pixel too big on one side and misses a corner."""
    target = np.zeros((24, 30), np.int64)
    target[6:16, 8:20] = VOID
    target[8:14, 10:18] = 1
    target[20:24, 0:5] = 2
    pred = np.zeros_like(target)
    pred[8:14, 10:19] = 1
    pred[8:10, 10:12] = 0
    pred[21:24, 0:5] = 2
    return target, pred


def numpy_band(target: np.ndarray, width: int, boundary: str) -> np.ndarray:
    """Every pixel whose Chebyshev distance to a seed is at most width, by brute force."""
    if boundary == "void":
        seeds = target == VOID
    else:
        seeds = np.zeros(target.shape, bool)
        h, w = target.shape
        for y in range(h):
            for x in range(w):
                for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and VOID not in (target[y, x], target[ny, nx]) \
                            and target[y, x] != target[ny, nx]:
                        seeds[y, x] = True
    ys, xs = np.nonzero(seeds)
    grid_y, grid_x = np.mgrid[: target.shape[0], : target.shape[1]]
    distance = np.full(target.shape, np.inf)
    for y, x in zip(ys, xs, strict=True):
        distance = np.minimum(distance, np.maximum(abs(grid_y - y), abs(grid_x - x)))
    return distance <= width


def numpy_miou(pred: np.ndarray, target: np.ndarray, keep: np.ndarray, num_classes: int) -> float:
    ious = []
    for c in range(num_classes):
        valid = keep & (target != VOID)
        inter = ((pred == c) & (target == c) & valid).sum()
        union = (((pred == c) | (target == c)) & valid).sum()
        if union:
            ious.append(inter / union)
    return float(np.mean(ious))


@pytest.mark.parametrize("boundary", ["void", "labels"])
@pytest.mark.parametrize("width", [1, 2, 5, 40])
def test_trimap_band_and_its_miou(boundary, width):
    target, pred = hand_masks()
    band = trimap_band(torch.from_numpy(target)[None], width, boundary, VOID)[0].numpy()
    assert np.array_equal(band, numpy_band(target, width, boundary))
    metric = SegmentationMetrics(3, ignore_index=VOID)
    t = torch.from_numpy(target)[None]
    metric.update(torch.from_numpy(pred)[None], torch.where(torch.from_numpy(band)[None], t, VOID))
    assert metric.compute()["mIoU"].item() == pytest.approx(numpy_miou(pred, target, band, 3), abs=1e-12)


def test_label_edges_skip_void_neighbours():
    target = torch.tensor([[[0, 0, VOID, 1], [0, 0, 1, 1]]])
    edges = label_edges(target, VOID)[0].tolist()
    assert edges == [[False, False, False, False], [False, True, True, False]]


def official_boundary(mask: np.ndarray, distance: int) -> np.ndarray:
    """boundary_iou's mask_to_boundary (Cheng et al.): the mask minus its erosion by a 3x3 kernel,
    `distance` times, on a copy padded with zeros; here in plain numpy, one 3x3 minimum a pass."""
    eroded = mask.astype(bool)
    for _ in range(distance):
        padded = np.pad(eroded, 1, constant_values=False)
        eroded = np.logical_and.reduce([padded[1 + dy: 1 + dy + mask.shape[0], 1 + dx: 1 + dx + mask.shape[1]]
                                        for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    return mask & ~eroded


def test_the_numpy_reference_is_the_official_opencv_erosion():
    target, _ = hand_masks()
    for c in range(3):
        padded = cv2.copyMakeBorder((target == c).astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=3)[1:-1, 1:-1].astype(bool)
        assert np.array_equal(official_boundary(target == c, 3), (target == c) & ~eroded)


def test_boundary_iou_counts_match_the_official_definition():
    target, pred = hand_masks()
    distance = max(1, round(0.1 * np.hypot(*target.shape)))
    inter, union = boundary_counts(torch.from_numpy(pred)[None], torch.from_numpy(target)[None], 3, VOID, 0.1)
    valid = target != VOID
    for c in range(3):
        true = official_boundary(target == c, distance) & valid
        predicted = official_boundary(pred == c, distance) & valid
        assert inter[c].item() == (true & predicted).sum() and union[c].item() == (true | predicted).sum(), c
    assert 0 < inter.sum() < union.sum()
