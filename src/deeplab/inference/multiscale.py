"""Inference as the paper evaluates: whole images padded to the network's grid, or sliding
windows for large ones; multi-scale and flip with the class probabilities averaged."""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deeplab.inference.task import MULTICLASS, Task

MODES = ("whole", "slide")


def padded_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """One pass on the input zero-padded (the mean pixel, after normalisation) at the bottom and
    right to k * output_stride + 1, the sizes at which the align_corners=True feature grids line up
    with the pixels (the paper's 513 = 32 * 16 + 1), then cropped back to the input's size."""
    height, width = images.shape[2:]
    padded_height, padded_width = grid_size((height, width), getattr(model, "output_stride", 1))
    if (padded_height, padded_width) != (height, width):
        images = F.pad(images, (0, padded_width - width, 0, padded_height - height))
    return model(images)[:, :, :height, :width]


def predict_classes(probs: torch.Tensor, task: Task = MULTICLASS) -> torch.Tensor:
    """The mask of each image: class ids (N, H, W) by argmax, or the task's thresholded labels."""
    return task.classes(probs)


def _starts(size: int, window: int, stride: int) -> list[int]:
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] + window < size:
        starts.append(size - window)  # the last window sits flush with the border
    return starts


def window_logits(model: nn.Module, images: torch.Tensor, window: Sequence[int],
                  stride: Sequence[int]) -> torch.Tensor:
    """Logits from windows of `window` pixels every `stride` pixels, averaged where they overlap.
    An image that fits in one window is one pass, exactly as in whole-image mode."""
    height, width = images.shape[2:]
    window_height, window_width = min(window[0], height), min(window[1], width)
    total = count = None
    for top in _starts(height, window_height, stride[0]):
        for left in _starts(width, window_width, stride[1]):
            logits = padded_logits(model, images[:, :, top:top + window_height, left:left + window_width])
            if total is None:
                total = logits.new_zeros(*logits.shape[:2], height, width)
                count = logits.new_zeros(1, 1, height, width)
            total[:, :, top:top + window_height, left:left + window_width] += logits
            count[:, :, top:top + window_height, left:left + window_width] += 1
    return total / count


def predict_logits(model: nn.Module, images: torch.Tensor, mode: str = "whole", window: Sequence[int] | None = None,
                   stride: Sequence[int] | None = None) -> torch.Tensor:
    """Single-scale logits (N, C, H, W) in `mode` whole or slide."""
    if mode == "whole":
        return padded_logits(model, images)
    if mode == "slide":
        if window is None or stride is None:
            raise ValueError("eval.mode=slide needs eval.window and eval.stride")
        return window_logits(model, images, window, stride)
    raise ValueError(f"eval.mode={mode!r} is not allowed; allowed: {', '.join(MODES)}")


def grid_size(size: Sequence[int], stride: int) -> tuple[int, ...]:
    """The smallest sides of the form k * stride + 1 that hold `size`."""
    return tuple(math.ceil((side - 1) / stride) * stride + 1 for side in size)


def scaled_size(size: Sequence[int], scale: float) -> tuple[int, ...]:
    """Sides (side - 1) * scale + 1, as the official code scales: corner pixels stay corner pixels
    (align_corners=True), and 513 becomes 257, 385, 641, 769, 897, still on the stride-16 grid."""
    return tuple(max(1, int((side - 1) * scale + 1)) for side in size)


@torch.no_grad()
def predict_probs(model: nn.Module, images: torch.Tensor, scales: Sequence[float] = (1.0,), flip: bool = False,
                  mode: str = "whole", window: Sequence[int] | None = None,
                  stride: Sequence[int] | None = None, activation: str = "softmax") -> torch.Tensor:
    """Class probabilities (N, C, H, W) averaged over every scale and, with `flip`, its mirror:
    softmax over the channels, or with activation="sigmoid" each channel's own (binary, multilabel).
    As in the official evaluation, the image is first padded to the network's grid, then resized
    bilinearly per scale; each pass's logits are resized back, cropped to the image and activated."""
    height, width = images.shape[2:]
    padded_size = grid_size((height, width), getattr(model, "output_stride", 1))
    padded = F.pad(images, (0, padded_size[1] - width, 0, padded_size[0] - height))
    total, passes = None, 0
    for scale in scales:
        size = scaled_size(padded_size, scale)
        scaled = padded if size == padded_size else F.interpolate(padded, size=size, mode="bilinear",
                                                                  align_corners=True)
        views = [(scaled, False), (scaled.flip(-1), True)] if flip else [(scaled, False)]
        for view, flipped in views:
            logits = predict_logits(model, view, mode, window, stride)
            if flipped:
                logits = logits.flip(-1)
            if size != padded_size:
                logits = F.interpolate(logits, size=padded_size, mode="bilinear", align_corners=True)
            logits = logits[:, :, :height, :width].float()
            probs = logits.softmax(dim=1) if activation == "softmax" else logits.sigmoid()
            total = probs if total is None else total + probs
            passes += 1
    return total / passes
