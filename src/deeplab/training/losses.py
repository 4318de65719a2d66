"""The training losses: torch's cross-entropy and smp's focal loss, each with class weights and the
official DeepLab code's hard-pixel mining (`top_k_percent_pixels`, `hard_example_mining_step`).

Without mining the loss is the library's own (torch's weighted mean over pixels; smp's weighted
mean over its per-class focal terms). With mining, as the official train_utils does: each pixel's
loss times its class's weight, the top k of all the batch's pixels kept, their sum divided by how
many of them are not zero; k goes linearly from 1.0 to `top_k_percent_pixels` over the first
`hard_example_mining_step` optimizer steps."""

from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from segmentation_models_pytorch.losses import DiceLoss, FocalLoss
from segmentation_models_pytorch.losses._functional import focal_loss_with_logits
from torch import nn

from deeplab.data.base import keep_fold, open_split
from deeplab.data.class_pixels import cached_count, class_weights
from deeplab.errors import DatasetError


class _MinedLoss(nn.Module):
    """Class weights and hard-pixel mining around a loss that reports per-pixel values."""

    def __init__(self, mean_loss: nn.Module, ignore_index: int, class_weights, top_k_percent_pixels: float,
                 hard_example_mining_step: int):
        super().__init__()
        if isinstance(class_weights, str):
            raise ValueError(f"loss.class_weights={class_weights} is computed from the training split by train.py; "
                             "give a list of numbers to build the loss on its own")
        if not 0 < top_k_percent_pixels <= 1:
            raise ValueError(f"loss.top_k_percent_pixels={top_k_percent_pixels} is not allowed; allowed: 0 < k <= 1")
        self.mean_loss = mean_loss
        self.ignore_index = ignore_index
        self.top_k = float(top_k_percent_pixels)
        self.mining_steps = int(hard_example_mining_step)
        weight = torch.tensor(class_weights, dtype=torch.float) if class_weights is not None else None
        self.register_buffer("weight", weight, persistent=False)  # follows the device, stays out of checkpoints
        self.step = 0  # the optimizer step, set by the LightningModule before each training step

    def current_top_k(self) -> float:
        if self.mining_steps == 0:
            return self.top_k
        ratio = min(1.0, self.step / self.mining_steps)
        return ratio * self.top_k + (1 - ratio)

    def pixel_losses(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.top_k == 1.0:
            return self.mean_loss(logits, target)
        valid = target != self.ignore_index
        losses = self.pixel_losses(logits, target) * valid
        if self.weight is not None:
            losses = losses * self.weight[torch.where(valid, target, 0)]
        flat = losses.flatten()
        kept = flat.topk(max(1, int(self.current_top_k() * flat.numel()))).values
        return kept.sum() / torch.count_nonzero(kept).clamp(min=1)


class CrossEntropy(_MinedLoss):
    """torch's pixel-wise cross-entropy (`weight=` the class weights), void pixels excluded."""

    def __init__(self, ignore_index: int = 255, class_weights=None, top_k_percent_pixels: float = 1.0,
                 hard_example_mining_step: int = 0):
        weight = None if class_weights is None or isinstance(class_weights, str) else \
            torch.tensor(class_weights, dtype=torch.float)
        super().__init__(nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index), ignore_index, class_weights,
                         top_k_percent_pixels, hard_example_mining_step)

    def pixel_losses(self, logits, target):
        return F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none")


class Focal(_MinedLoss):
    """smp's focal loss in the task's mode: multiclass, one-vs-rest sigmoid focal terms averaged
    over the classes (`class_weights=` weights the classes' terms); binary and multilabel, the
    focal term of each sigmoid channel."""

    def __init__(self, gamma: float = 2.0, alpha: float | None = None, ignore_index: int = 255, class_weights=None,
                 top_k_percent_pixels: float = 1.0, hard_example_mining_step: int = 0, mode: str = "multiclass"):
        if class_weights is not None and mode != "multiclass":
            raise ValueError(f"loss.class_weights weighs the classes of task=multiclass; with task={mode} leave it "
                             "null (loss=bce takes loss.pos_weight)")
        weights = None if isinstance(class_weights, str) else class_weights
        focal = FocalLoss(mode=mode, gamma=gamma, alpha=alpha, ignore_index=ignore_index,
                          **({"class_weights": weights} if mode == "multiclass" else {}))
        super().__init__(focal, ignore_index, class_weights, top_k_percent_pixels, hard_example_mining_step)
        self.gamma, self.alpha, self.mode = gamma, alpha, mode

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.mode == "multilabel" and self.top_k == 1.0:
            # smp's multilabel focal loss fails on an ignore_index (its void mask has the label axis
            # too): the same focal terms, averaged over the labelled pixels of every label
            valid = target != self.ignore_index
            return (self.pixel_losses(logits, target) * valid).sum() / valid.sum().clamp(min=1)
        return super().forward(logits, target)

    def pixel_losses(self, logits, target):
        if self.mode != "multiclass":  # void pixels are zeroed by the caller
            channels = logits[:, 0] if self.mode == "binary" else logits
            return focal_loss_with_logits(channels, (target == 1).to(logits.dtype), gamma=self.gamma,
                                          alpha=self.alpha, reduction="none")
        terms = [focal_loss_with_logits(logits[:, c], (target == c).to(logits.dtype), gamma=self.gamma,
                                        alpha=self.alpha, reduction="none") for c in range(logits.shape[1])]
        return torch.stack(terms).mean(dim=0)


def _pos_weight(value) -> torch.Tensor | None:
    if isinstance(value, str):
        raise ValueError(f"loss.pos_weight={value} is computed from the training split by train.py; give a number "
                         "to build the loss on its own")
    return None if value is None else torch.tensor(float(value))


class BinaryCrossEntropy(nn.Module):
    """torch's binary cross-entropy with logits of each sigmoid channel against 0/1 labels, averaged
    over the labelled pixels (void excluded); `pos_weight` weighs the foreground. Targets are
    (N, H, W) for one channel (binary) or (N, L, H, W), one mask a label (multilabel)."""

    def __init__(self, ignore_index: int = 255, pos_weight: float | str | None = None):
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("pos_weight", _pos_weight(pos_weight), persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == logits.ndim - 1:
            target = target[:, None]
        valid = target != self.ignore_index
        losses = F.binary_cross_entropy_with_logits(logits, (target == 1).to(logits.dtype), reduction="none",
                                                    pos_weight=self.pos_weight)
        return (losses * valid).sum() / valid.sum().clamp(min=1)


class BCEDice(nn.Module):
    """Binary cross-entropy plus `dice_weight` times smp's soft Dice loss of the same channels."""

    def __init__(self, ignore_index: int = 255, pos_weight: float | str | None = None, dice_weight: float = 1.0,
                 mode: str = "binary"):
        super().__init__()
        if mode not in ("binary", "multilabel"):
            raise ValueError(f"loss=bce_dice is for task=binary or task=multilabel, not task={mode}")
        self.bce = BinaryCrossEntropy(ignore_index, pos_weight)
        self.dice = DiceLoss(mode=mode, from_logits=True, ignore_index=ignore_index)
        self.dice_weight = float(dice_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.bce(logits, target) + self.dice_weight * self.dice(logits, target)


def resolve_class_weights(loss: DictConfig, data: DictConfig, datamodule) -> str | None:
    """Replaces a weighting method in loss.class_weights by its numbers, from the training split's
    pixel counts (cached beside the data), so the stored config says what the run used; returns
    the line that prints them (also for weights given as numbers)."""
    weights = loss.get("class_weights")
    if weights is None:
        return None
    source = "given"
    if isinstance(weights, str):
        datamodule.prepare_data()  # the synthetic set is written before it can be counted
        split = open_split(datamodule.dataset, data.train_split, None, data.num_classes, data.ignore_index,
                           datamodule.label_map)
        if data.get("fold") is not None:  # cross-validation: the fold's training images only
            split = keep_fold(split, data.fold, data.num_folds, held_out=False)
        counts = cached_count(split, data.train_split, data.num_classes, data.ignore_index, Path(data.root))
        kept = f"cached in {counts.cached}" if counts.cached else f"not cached: {data.root} is not writable"
        source = f"{weights} of {counts.images} masks of {data.train_split}, {kept}"
        weights = loss.class_weights = class_weights(counts.pixels, counts.image_pixels, weights)
    named = ", ".join(f"{name} {w:.4g}" for name, w in zip(data.class_names, weights, strict=True))
    return f"loss.class_weights ({source}): {named}"


def resolve_pos_weight(loss: DictConfig, data: DictConfig, datamodule) -> str | None:
    """loss.pos_weight=balanced (task=binary) as its number, the training split's background pixels
    over its foreground pixels (counted and cached as for class weights); returns the line that
    prints it."""
    if loss.get("pos_weight") != "balanced":
        return None
    datamodule.prepare_data()
    split = open_split(datamodule.dataset, data.train_split, None, data.num_classes, data.ignore_index,
                       datamodule.label_map)
    if data.get("fold") is not None:
        split = keep_fold(split, data.fold, data.num_folds, held_out=False)
    counts = cached_count(split, data.train_split, data.num_classes, data.ignore_index, Path(data.root))
    background, foreground = (int(v) for v in counts.pixels[:2])
    if foreground == 0:
        raise DatasetError(f"loss.pos_weight=balanced: the {counts.images} masks of {data.train_split} hold no "
                           f"{data.class_names[1]} pixel")
    loss.pos_weight = background / foreground
    return (f"loss.pos_weight (balanced, {counts.images} masks of {data.train_split}): {loss.pos_weight:.4g} "
            f"({background} background / {foreground} {data.class_names[1]} pixels)")
