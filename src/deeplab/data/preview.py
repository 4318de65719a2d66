"""What training sees: augmented samples in a grid, each image beside its mask laid over it in the
dataset's colours, void in VOC's void colour, unblended, so that it stands out."""

import math
from collections.abc import Sequence

import numpy as np

from deeplab.data.palette import voc_palette

VOID_COLOUR = (224, 224, 192)  # VOC's colour for void (index 255 of its colour map)
GAP = 4  # white pixels between an image and its overlay, and between tiles


def class_colours(colors, num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8: the dataset's colours when its config has them, else VOC's colour map."""
    palette = np.asarray(colors, dtype=np.uint8) if colors else voc_palette()[:num_classes]
    return palette.reshape(-1, 3)


def overlay(image: np.ndarray, mask: np.ndarray, colours: np.ndarray, ignore_index: int,
            alpha: float = 0.5) -> np.ndarray:
    """The image (H, W, 3 uint8) with each pixel's class colour blended in; void (and any value
    without a colour) painted in VOID_COLOUR. A (labels, H, W) mask of 0/1 a label (multilabel)
    blends in the colour of each label a pixel has, one after the other."""
    if mask.ndim == 3:
        blended = image.astype(np.float32)
        for label, colour in zip(mask, colours, strict=False):
            has = label == 1
            blended[has] = (1 - alpha) * blended[has] + alpha * colour
        out = blended.round().astype(np.uint8)
        out[(mask == ignore_index).any(axis=0)] = VOID_COLOUR
        return out
    known = (mask >= 0) & (mask < len(colours)) & (mask != ignore_index)
    blended = (1 - alpha) * image + alpha * colours[np.where(known, mask, 0)]
    out = blended.round().astype(np.uint8)
    out[~known] = VOID_COLOUR
    return out


def preview_grid(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], colours: np.ndarray,
                 ignore_index: int, columns: int | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One tile a sample, [image | overlay], in rows of `columns` (about square by default);
    returns the grid (uint8) and each tile's top-left corner."""
    if not images:
        raise ValueError("no samples to show")
    height = max(image.shape[0] for image in images)
    width = max(image.shape[1] for image in images)
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    tile_width = 2 * width + GAP
    grid = np.full((rows * (height + GAP) - GAP, columns * (tile_width + GAP) - GAP, 3), 255, dtype=np.uint8)
    corners = []
    for index, (image, mask) in enumerate(zip(images, masks, strict=True)):
        top, left = index // columns * (height + GAP), index % columns * (tile_width + GAP)
        h, w = image.shape[:2]
        grid[top:top + h, left:left + w] = image
        grid[top:top + h, left + width + GAP:left + width + GAP + w] = overlay(image, mask, colours, ignore_index)
        corners.append((top, left))
    return grid, corners
