"""Accuracy near object boundaries, on the device: the DeepLabV3+ paper's trimap (Fig. 5a: mIoU
within a band of a given width around boundaries) and Boundary IoU (Cheng et al., CVPR 2021).
Bands are built in the image's own resolution with max-pooling (a (2w+1)-pixel square: every
pixel within Chebyshev distance w), in two 1-D passes."""

import math

import torch
import torch.nn.functional as F

BOUNDARIES = ("void", "labels")  # the band around void pixels (VOC's borders), or around class changes


def _square_max(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Max over a (2r+1)-pixel square of (N, 1, H + 2r, W + 2r), as two 1-D passes (rows, then
    columns): linear in r where one square kernel would be quadratic."""
    x = F.max_pool2d(x, (2 * radius + 1, 1), stride=1)
    return F.max_pool2d(x, (1, 2 * radius + 1), stride=1)


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, H, W) bool: the pixels within `radius` of a True pixel."""
    if radius <= 0:
        return mask
    height, width = mask.shape[-2:]
    if radius >= max(height, width) - 1:  # the square reaches across the image from any pixel
        return mask.flatten(1).any(dim=1)[:, None, None].expand_as(mask).clone()
    padded = F.pad(mask[:, None].float(), (radius,) * 4, value=0.0)
    return _square_max(padded, radius)[:, 0] > 0


def label_edges(target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Labelled pixels with a 4-neighbour of another class (void neighbours do not count)."""
    valid = target != ignore_index
    edges = torch.zeros_like(valid)
    across = (target[:, :, 1:] != target[:, :, :-1]) & valid[:, :, 1:] & valid[:, :, :-1]
    down = (target[:, 1:] != target[:, :-1]) & valid[:, 1:] & valid[:, :-1]
    edges[:, :, 1:] |= across
    edges[:, :, :-1] |= across
    edges[:, 1:] |= down
    edges[:, :-1] |= down
    return edges


def trimap_band(target: torch.Tensor, width: int, boundary: str, ignore_index: int) -> torch.Tensor:
    """The pixels within `width` of a boundary: of a void pixel (`void`, the paper's definition on
    VOC, whose objects are outlined by a void band) or of a class change (`labels`)."""
    if boundary not in BOUNDARIES:
        raise ValueError(f"eval.trimap.boundary={boundary} is not allowed; allowed: {', '.join(BOUNDARIES)}")
    seeds = target == ignore_index if boundary == "void" else label_edges(target, ignore_index)
    return dilate(seeds, width)


def inner_boundary(mask: torch.Tensor, distance: int) -> torch.Tensor:
    """The pixels of `mask` within `distance` of its contour, the image's edge counting as contour
    (Boundary IoU's mask_to_boundary: the mask minus its erosion by a 3x3 kernel, `distance` times)."""
    outside = F.pad((~mask)[:, None].float(), (distance,) * 4, value=1.0)
    eroded = _square_max(outside, distance)[:, 0] == 0
    return mask & ~eroded


def boundary_distance(height: int, width: int, dilation_ratio: float) -> int:
    """d = dilation_ratio x the image diagonal, rounded, at least 1 pixel."""
    return max(1, round(dilation_ratio * math.hypot(height, width)))


def boundary_counts(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int,
                    dilation_ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class, the intersection and union of the predicted and true masks' boundary regions
    over a batch of same-sized images (void pixels excluded from both); summed over a split,
    intersection / union is each class's Boundary IoU."""
    distance = boundary_distance(target.shape[-2], target.shape[-1], dilation_ratio)
    valid = target != ignore_index
    intersection = torch.zeros(num_classes, dtype=torch.long, device=target.device)
    union = torch.zeros_like(intersection)
    # Only the classes in the batch's truth or prediction (an image holds a few of a dataset's
    # classes): each one's true and predicted masks, all bands in one batched pass.
    present = torch.unique(torch.cat([target[valid], pred[valid]]))
    present = present[present < num_classes]
    if len(present) == 0:
        return intersection, union
    masks = torch.cat([target[None] == present[:, None, None, None], pred[None] == present[:, None, None, None]])
    bands = inner_boundary(masks.flatten(0, 1), distance).view(masks.shape) & valid
    true, predicted = bands[: len(present)], bands[len(present):]
    intersection[present] = (true & predicted).flatten(1).sum(1)
    union[present] = (true | predicted).flatten(1).sum(1)
    return intersection, union
