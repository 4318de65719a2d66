"""Where a training step's time goes, part by part (`bench.parts=true`): each part of the model
(encoder, ASPP, the decoder and each of its refinement convs, classifier) run forward and backward
on its own, on the very tensors it gets in a step, at the step's precision, against its share of
the step's multiply-adds (forward and backward, counted by torch's FlopCounterMode on the same
call). A part whose time share is well above its arithmetic share is bound by something else than
arithmetic (memory traffic, a slow kernel); the top operators of each part say which."""

import os
import statistics
import time

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode


def model_parts(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of the parts timed: the top-level modules, then each refinement conv of the
    decoder on a row of its own (its time is also in the decoder's row)."""
    parts = [(name, module) for name, module in model.named_children()]
    decoder = getattr(model, "decoder", None)
    if decoder is not None:
        parts += [(f"decoder.refine.{i}", conv) for i, conv in enumerate(decoder.refine)]
    return parts


def captured_inputs(model: nn.Module, parts: list[tuple[str, nn.Module]], images: torch.Tensor,
                    dtype: torch.dtype | None) -> dict[str, tuple]:
    """The positional inputs each part got in one training forward of `images`, detached."""
    inputs, hooks = {}, []
    for name, module in parts:
        def keep(_module, args, name=name):
            inputs[name] = tuple(a.detach().clone() if torch.is_tensor(a) else a for a in args)
        hooks.append(module.register_forward_pre_hook(keep))
    try:
        with torch.autocast(images.device.type, dtype=dtype, enabled=dtype is not None), torch.no_grad():
            model(images)
    finally:
        for hook in hooks:
            hook.remove()
    return inputs


def _forward_backward(module: nn.Module, args: tuple, dtype: torch.dtype | None, device: torch.device) -> None:
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        out = module(*args)
    outputs = [o for o in (out if isinstance(out, (list, tuple)) else [out]) if torch.is_tensor(o) and o.requires_grad]
    torch.autograd.backward(outputs, [torch.ones_like(o) for o in outputs])


def time_parts(model: nn.Module, images: torch.Tensor, dtype: torch.dtype | None, repeats: int = 5,
               warmup: int = 2, top_ops: int = 5) -> list[dict]:
    """Seconds (median of `repeats`, the parts taking turns) and multiply-adds of each part's
    forward and backward, and its `top_ops` operators by self time a call (profiled over `repeats` calls)."""
    device = images.device
    model.train()
    parts = model_parts(model)
    inputs = captured_inputs(model, parts, images, dtype)

    def once(module, name):
        # as in a step: gradients for the part's weights and, but for the images, for its inputs
        args = tuple(a.detach().requires_grad_(name != "encoder" and a.is_floating_point()) if torch.is_tensor(a)
                     else a for a in inputs[name])
        _forward_backward(module, args, dtype, device)
        model.zero_grad(set_to_none=True)

    cuda = device.type == "cuda"
    times = {name: [] for name, _ in parts}
    for i in range(warmup + repeats):
        for name, module in parts:
            if cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            once(module, name)
            if cuda:
                torch.cuda.synchronize(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    rows = []
    for name, module in parts:
        counter = FlopCounterMode(display=False)
        with counter:
            once(module, name)
        os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's own warnings (no GPU here) are not news
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
            for _ in range(repeats):  # warm: the timing above ran first
                once(module, name)
        ops = sorted(prof.key_averages(), key=lambda e: _self_us(e, cuda), reverse=True)[:top_ops]
        rows.append({"part": name, "seconds": statistics.median(times[name]),
                     "madds": counter.get_total_flops() // 2,
                     "top_ops": [{"op": e.key, "self_ms": _self_us(e, cuda) / repeats / 1000,
                                  "calls": e.count / repeats} for e in ops]})
    return rows


def _self_us(event, cuda: bool) -> float:
    """An operator's own time in microseconds over the profiled calls: on the GPU, its kernels'."""
    return event.self_device_time_total if cuda else event.self_cpu_time_total
