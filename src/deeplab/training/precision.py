"""`trainer.precision=auto`: bf16 autocast where the device computes bf16 natively, full fp32
elsewhere (emulated bf16 is slower than fp32, and fp16 needs loss scaling for no gain there)."""

import torch
from omegaconf import DictConfig

from deeplab.inference.prepare import native_bf16 as device_bf16
from deeplab.log import LOG


def native_bf16(accelerator: str) -> tuple[bool, str]:
    """Whether the device training would use computes bf16 natively, and what says so."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return device_bf16(torch.device("cuda", 0))
    if accelerator in ("auto", "cpu"):
        return device_bf16(torch.device("cpu"))
    return False, f"trainer.accelerator={accelerator}"


def resolve_precision(trainer: DictConfig) -> str:
    """Replaces trainer.precision=auto by what it picks here, says which and why; returns it."""
    if str(trainer.precision) != "auto":
        return str(trainer.precision)
    native, why = native_bf16(str(trainer.accelerator))
    trainer.precision = "bf16-mixed" if native else "32-true"
    LOG.info(f"trainer.precision=auto: {trainer.precision} ({why})")
    return trainer.precision


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved Lightning mixed precision; None for the full-precision ones."""
    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(precision))
