"""`trainer.precision=auto`: bf16 autocast where the device computes bf16 natively, full fp32
elsewhere (emulated bf16 is slower than fp32, and fp16 needs loss scaling for no gain there)."""

import torch
from omegaconf import DictConfig

from deeplab.log import LOG


def native_bf16(accelerator: str) -> tuple[bool, str]:
    """Whether the device training would use computes bf16 natively, and what says so."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return torch.cuda.is_bf16_supported(including_emulation=False), name
    if accelerator in ("auto", "cpu"):
        cpu = torch.cpu
        if getattr(cpu, "_is_amx_tile_supported", lambda: False)():
            return True, "this CPU has AMX"
        if getattr(cpu, "_is_avx512_bf16_supported", lambda: False)():
            return True, "this CPU has AVX512-BF16"
        return False, "this CPU has no native bf16 (AVX512-BF16 or AMX)"
    return False, f"trainer.accelerator={accelerator}"


def resolve_precision(trainer: DictConfig) -> str:
    """Replaces trainer.precision=auto by what it picks here, says which and why; returns it."""
    if str(trainer.precision) != "auto":
        return str(trainer.precision)
    native, why = native_bf16(str(trainer.accelerator))
    trainer.precision = "bf16-mixed" if native else "32-true"
    LOG.info(f"trainer.precision=auto: {trainer.precision} ({why})")
    return trainer.precision
