"""Whole-image inference with the paper's multi-scale and flip averaging."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def predict_probs(model: nn.Module, images: torch.Tensor, scales: Sequence[float] = (1.0,),
                  flip: bool = False) -> torch.Tensor:
    """Class probabilities (N, C, H, W) averaged over every scale and, with `flip`, its mirror:
    each input is resized bilinearly, its logits resized back and soft-maxed before averaging."""
    height, width = images.shape[2:]
    total, passes = None, 0
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = images if size == (height, width) else F.interpolate(
            images, size=size, mode="bilinear", align_corners=True)
        views = [(scaled, False), (scaled.flip(-1), True)] if flip else [(scaled, False)]
        for view, flipped in views:
            logits = model(view)
            if flipped:
                logits = logits.flip(-1)
            if logits.shape[2:] != (height, width):
                logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=True)
            probs = logits.float().softmax(dim=1)
            total = probs if total is None else total + probs
            passes += 1
    return total / passes
