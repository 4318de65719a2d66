"""The GPU fast path as config: channels-last memory layout and torch.compile."""

import torch
from omegaconf import DictConfig
from torch import nn


def to_channels_last(images: torch.Tensor) -> torch.Tensor:
    """NHWC in memory: what tensor cores want for convolutions under bf16/fp16."""
    return images.contiguous(memory_format=torch.channels_last)


def apply_fast_path(model: nn.Module, model_cfg: DictConfig) -> nn.Module:
    """`model.channels_last` converts the weights' layout; `model.compile` compiles the forward
    in place (nn.Module.compile), so state-dict keys, checkpoints and set_output_stride are
    unchanged."""
    if model_cfg.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    if model_cfg.get("compile"):
        model.compile()
    return model
