"""The memory one training step holds, counted without the device it will run on.

The model is built and run on PyTorch's fake tensors (shapes, dtypes and storages, no data), on
the CPU's autocast rules for mixed precision; what autograd saves for the backward pass is seen
through saved-tensor hooks, each storage once. Parameters, gradients and the optimizer's state are
counted by building the optimizer on the fake parameters and taking one step. Not counted: the
allocator's rounding and caching, cuDNN workspaces, the backward pass's transient buffers and the
data loader: a lower bound of a GPU's max_memory_allocated."""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

# trainer.precision -> (autocast dtype, parameter dtype)
PRECISIONS = {"32-true": (None, torch.float32), "32": (None, torch.float32),
              "bf16-mixed": (torch.bfloat16, torch.float32), "16-mixed": (torch.float16, torch.float32),
              "bf16-true": (None, torch.bfloat16), "16-true": (None, torch.float16)}


def saved_for_backward(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, autocast: torch.dtype | None,
                       ignore_index: int = 255) -> int:
    """Bytes that one training forward and its cross-entropy leave for the backward pass: every
    tensor autograd saves, each storage once; the model's parameters and buffers, which are held
    anyway, are not counted (their autocast copies are). Real, fake and meta tensors alike."""
    held = {t.untyped_storage()._cdata for t in [*model.parameters(), *model.buffers()]}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage._cdata not in held:
            saved[storage._cdata] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), \
            torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        logits = model(images)
        F.cross_entropy(logits.float(), masks, ignore_index=ignore_index)
    return sum(saved.values())


def step_memory(build: Callable[[], nn.Module], size: tuple[int, int], in_channels: int, precision: str,
                optimizer: Callable | None = None) -> dict:
    """Bytes of a training step's parts, for a model `build()` makes (in train mode) at input
    `size`: `params`, `grads`, `optimizer` (its state after one step), and the activations kept
    for backward as `activations_per_image` and `activations_fixed` (weights' autocast copies,
    anything that does not grow with the batch), from forwards of 2 and 4 images (batch norm
    needs two). `optimizer(parameters)` builds the optimizer; None counts no state."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not allowed; allowed: {', '.join(PRECISIONS)}")
    autocast, dtype = PRECISIONS[precision]
    with FakeTensorMode(allow_non_fake_inputs=False):
        model = build().train()
        if dtype != torch.float32:  # (fake parameters cannot be swapped in place by .to())
            for param in model.parameters():
                param.data = param.data.to(dtype)
        counts = {}
        for batch in (2, 4):
            images = torch.empty(batch, in_channels, *size, dtype=dtype)
            masks = torch.empty(batch, *size, dtype=torch.long)
            counts[batch] = saved_for_backward(model, images, masks, autocast)
        trainable = [p for p in model.parameters() if p.requires_grad]
        params = sum(p.numel() * p.element_size() for p in model.parameters())
        grads = sum(p.numel() * p.element_size() for p in trainable)
        state = 0
        if optimizer is not None and trainable:
            for p in trainable:
                p.grad = torch.zeros_like(p)
            opt = optimizer(trainable)
            opt.step()
            state = sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
                        if isinstance(t, torch.Tensor))
    per_image = (counts[4] - counts[2]) // 2
    return {"params": params, "grads": grads, "optimizer": state, "activations_per_image": per_image,
            "activations_fixed": counts[2] - 2 * per_image}


def total_bytes(memory: dict, batch: int) -> int:
    """The step's held memory at `batch` images: weights, gradients, optimizer state, activations."""
    return (memory["params"] + memory["grads"] + memory["optimizer"] + memory["activations_fixed"]
            + batch * memory["activations_per_image"])


def largest_batch(memory: dict, budget_bytes: float) -> int:
    """The most images a step can take within `budget_bytes` (0 when not even the weights fit)."""
    room = budget_bytes - total_bytes(memory, 0)
    return max(0, int(room // memory["activations_per_image"])) if memory["activations_per_image"] else 0
