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
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

_aten = torch.ops.aten


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """A conv's backward: its input gradient and its weight gradient each cost what its forward
    costs. torch's own count of the weight gradient ignores groups (torch 2.14), so it counted a
    depthwise conv's backward `channels` times over: 256 times for the decoder's."""
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed=transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def training_flop_counter() -> FlopCounterMode:
    """torch's FlopCounterMode, with grouped convs' backward counted right."""
    return FlopCounterMode(display=False, custom_mapping={_aten.convolution_backward: _conv_backward_flop})


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
        counter = training_flop_counter()
        with counter:
            once(module, name)
        os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's own warnings (no GPU here) are not news
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities, record_shapes=True) as prof:
            for _ in range(repeats):  # warm: the timing above ran first
                once(module, name)
        ops = {}  # by operator and, for a convolution, kind: a depthwise conv apart from a 1x1 one
        for event in prof.key_averages(group_by_input_shape=True):
            total, calls = ops.get(_label(event), (0.0, 0))
            ops[_label(event)] = (total + _self_us(event, cuda), calls + event.count)
        slowest = sorted(ops.items(), key=lambda item: item[1][0], reverse=True)[:top_ops]
        rows.append({"part": name, "seconds": statistics.median(times[name]),
                     "madds": counter.get_total_flops() // 2,
                     "top_ops": [{"op": op, "self_ms": total / repeats / 1000, "calls": calls / repeats}
                                 for op, (total, calls) in slowest]})
    return rows


def _self_us(event, cuda: bool) -> float:
    """An operator's own time in microseconds over the profiled calls: on the GPU, its kernels'."""
    return event.self_device_time_total if cuda else event.self_cpu_time_total


def _label(event) -> str:
    """The operator's name; for a convolution also its kind (depthwise, 1x1, 3x3, ...), read from
    its weight's shape [out, in / groups, kh, kw]: the second argument, the third of a backward."""
    if "convolution" not in event.key:
        return event.key
    index = 2 if event.key.endswith("_backward") else 1
    weight = event.input_shapes[index] if len(event.input_shapes) > index else []
    if len(weight) != 4:
        return event.key
    kind = "depthwise" if weight[1] == 1 and weight[2] > 1 else f"{weight[2]}x{weight[3]}"
    return f"{event.key} {kind}"
