"""Activation checkpointing of the encoder: each of its blocks keeps only its input for the
backward pass and runs again there, trading about one more encoder forward for the activations
inside the blocks (most of a step's memory at output stride 8).

PyTorch's checkpoint wrapper does the work; state_dict keys stay those of the plain model. Batch
norm would update its running statistics a second time when a block runs again in the backward
pass (timm's and torch's checkpointing both do), so the recomputation puts them back."""

import contextlib
from functools import partial

import torch
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    CheckpointWrapper,
    apply_activation_checkpointing,
    checkpoint_wrapper,
)
from torch.utils.checkpoint import checkpoint

CONTAINERS = (nn.Sequential, nn.ModuleList)


def encoder_blocks(encoder: nn.Module) -> list[nn.Module]:
    """The blocks to checkpoint: the encoder network's children that hold modules (timm's blocks,
    a stem), with sequential containers (ResNet's layer1..4, MobileNet's features) opened into
    their blocks. Single layers (a stem's conv, a pooling) are too small to be worth it."""
    root = getattr(encoder, "model", encoder)  # timm encoders through smp's universal encoder
    blocks, pending = [], list(root.children())
    while pending:
        child = pending.pop(0)
        if isinstance(child, CONTAINERS):
            pending[:0] = list(child.children())
        elif isinstance(child, CheckpointWrapper) or any(True for _ in child.children()):
            blocks.append(child)
    return blocks


@contextlib.contextmanager
def _statistics_kept(module: nn.Module):
    """Batch norm statistics as they were: a block run again for the backward pass leaves them."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for norm, (mean, var, count) in zip(norms, saved, strict=True):
                norm.running_mean.copy_(mean)
                norm.running_var.copy_(var)
                norm.num_batches_tracked.copy_(count)


def _contexts(block: nn.Module) -> tuple:
    """(around the forward, around its recomputation in the backward pass)"""
    return contextlib.nullcontext(), _statistics_kept(block)


def _checkpointed(block: nn.Module) -> nn.Module:
    return checkpoint_wrapper(block, checkpoint_fn=partial(checkpoint, use_reentrant=False,
                                                           context_fn=partial(_contexts, block)))


def checkpoint_encoder(encoder: nn.Module) -> int:
    """Wraps each encoder block (once); returns how many blocks are checkpointed."""
    wanted = {id(b) for b in encoder_blocks(encoder) if not isinstance(b, CheckpointWrapper)}
    if wanted:
        apply_activation_checkpointing(encoder, checkpoint_wrapper_fn=_checkpointed,
                                       check_fn=lambda module: id(module) in wanted)
    return sum(isinstance(m, CheckpointWrapper) for m in encoder.modules())
