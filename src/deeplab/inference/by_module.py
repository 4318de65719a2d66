"""Where the multiply-adds go: one inference counted module by module (encoder stages, each ASPP
branch, image pooling, projections, each decoder refinement conv, classifier), and for every
depthwise separable convolution what the standard convolution it replaces would cost.

A depthwise separable convolution is a k x k depthwise conv (one filter per input channel) whose
output goes, through batch norm and activation only, into a 1x1 pointwise conv. Over an H x W
output it has k*k*C_in + C_in*C_out weights and (k*k*C_in + C_in*C_out)*H*W multiply-adds; the
standard k x k conv from C_in to C_out has k*k*C_in*C_out weights and k*k*C_in*C_out*H*W."""

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deeplab.inference.multiscale import grid_size, padded_logits, scaled_size


def _is_depthwise(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels


def _is_pointwise(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1


def convolution_calls(model: nn.Module, images: list[torch.Tensor]) -> list[tuple[str, nn.Conv2d, tuple]]:
    """(name, conv, output shape) of every convolution, in the order they ran, over one padded
    inference of each image."""
    names = {module: name for name, module in model.named_modules()}
    calls = []
    hooks = [m.register_forward_hook(lambda mod, a, out: calls.append((names[mod], mod, tuple(out.shape))))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        for image in images:
            padded_logits(model, image)
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def separable_convolutions(calls: list[tuple[str, nn.Conv2d, tuple]]) -> list[dict]:
    """Each depthwise conv followed, as the next conv run, by a 1x1 conv over its channels: its
    arithmetic and that of the standard conv with the depthwise conv's kernel, stride and dilation.
    `calls`: (name, conv, output shape) in the order the convs ran."""
    pairs = []
    for (name, dw, shape), (pw_name, pw, _) in zip(calls, calls[1:], strict=False):
        if not (_is_depthwise(dw) and _is_pointwise(pw) and pw.in_channels == dw.out_channels):
            continue
        positions = shape[0] * shape[2] * shape[3]
        kernel, c_in, c_out = dw.kernel_size[0] * dw.kernel_size[1], dw.in_channels, pw.out_channels
        params = dw.weight.numel() + pw.weight.numel()
        pairs.append({"depthwise": name, "pointwise": pw_name, "kernel": list(dw.kernel_size), "in": c_in,
                      "out": c_out, "size": list(shape[2:]), "params": params,
                      "madds": (dw.weight.numel() + pw.weight.numel()) * positions,
                      "standard_params": kernel * c_in * c_out, "standard_madds": kernel * c_in * c_out * positions})
    return pairs


def _encoder_stages(stage_ends: dict) -> list[tuple[str, list[str]]]:
    """The encoder's modules in the order they ran, cut after each one whose output the encoder
    returned as a feature: one stage a feature (its stride is the stage's)."""
    stages, members = [], []
    for name in stage_ends["order"]:
        members.append(name)
        if name in stage_ends["ends"]:
            stages.append((f"encoder stage {len(stages) + 1} (stride {stage_ends['ends'][name]})", members))
            members = []
    if members:
        stages.append(("encoder (after the last feature)", members))
    return stages


def deeplab_parts(model: nn.Module) -> list[tuple[str, list[str]]]:
    """The head's rows of the table, each with the module names it covers (encoder rows come from a run)."""
    parts = []
    rates = list(getattr(model.aspp, "rates", ()))
    for index, _ in enumerate(model.aspp.branches):
        if index == 0:
            label = "aspp 1x1"
        elif index <= len(rates):
            label = f"aspp 3x3 rate {rates[index - 1]}"
        else:
            label = "aspp image pooling"
        parts.append((label, [f"aspp.branches.{index}"]))
    parts.append(("aspp projection", ["aspp.project"]))
    if model.decoder is not None:
        parts.append((f"decoder projection ({model.decoder.project[0].out_channels} ch)", ["decoder.project"]))
        for index, _ in enumerate(model.decoder.refine):
            parts.append((f"decoder refinement conv {index + 1}", [f"decoder.refine.{index}"]))
    parts.append(("classifier", ["classifier"]))
    return parts


def encoder_run_order(model: nn.Module, image: torch.Tensor) -> dict:
    """Runs the model once (on the meta device: shapes only) and records the encoder's top-level
    modules in the order they ran, and which of their outputs the encoder returned as features."""
    encoder = model.encoder
    body = encoder.model if hasattr(encoder, "model") and len(list(encoder.children())) == 1 else encoder
    prefix = "encoder.model." if body is not encoder else "encoder."
    leaves = []
    for name, child in body.named_children():
        # a plain Sequential holding the stages (MobileNetV2's features) is opened up
        inner = list(child.named_children()) if isinstance(child, nn.Sequential) and len(body._modules) == 1 else []
        leaves += [(f"{prefix}{name}.{n}", c) for n, c in inner] or [(f"{prefix}{name}", child)]
    top = [name for name, _ in leaves]
    outputs, order = [], []  # (module name, output) of every encoder module; the top-level ones that ran

    def record(name):
        def hook(module, args, output):
            outputs.append((name, output))
            if name in top:
                order.append(name)
        return hook

    hooks = [module.register_forward_hook(record(f"encoder.{name}" if name else "encoder"))
             for name, module in encoder.named_modules()]
    try:
        with torch.no_grad():
            features = encoder(image)
    finally:
        for hook in hooks:
            hook.remove()
    ends, height = {}, image.shape[2]
    for feature in features[1:]:  # a feature may be an inner module's output (timm's feature hooks)
        source = next((name for name, output in outputs if output is feature), None)
        owner = next((t for t in top if source is not None and (source == t or source.startswith(t + "."))), None)
        if owner is not None:
            ends[owner] = 2 ** round(math.log2(height / feature.shape[2]))
    return {"order": list(dict.fromkeys(order)), "ends": ends}


@torch.no_grad()
def count_by_module(model: nn.Module, input_size: Sequence[int] = (513, 513), scales: Sequence[float] = (1.0,),
                    flip: bool = False) -> dict:
    """One inference (every scale, and flipped) counted module by module; the rows' multiply-adds
    add up to the model's, any op outside them shown as its own row."""
    shapes_only = copy.deepcopy(model).to("meta").eval()
    base = grid_size(input_size, getattr(model, "output_stride", 1))
    channels = getattr(model, "in_channels", 3)
    stages = encoder_run_order(shapes_only, torch.zeros(1, channels, *base, device="meta"))
    counter = FlopCounterMode(display=False)
    with counter:
        calls = convolution_calls(shapes_only, [torch.zeros(1, channels, *scaled_size(base, scale), device="meta")
                                                for scale in scales])
    copies = 2 if flip else 1
    root = type(shapes_only).__name__
    by_name = {key.removeprefix(root).removeprefix("."): sum(ops.values()) // 2 * copies
               for key, ops in counter.get_flop_counts().items()}
    total = by_name["Global"]
    separable = separable_convolutions(calls)  # one entry a pass: every scale's
    rows = []
    for label, members in _encoder_stages(stages) + deeplab_parts(shapes_only):
        inside = [p for p in separable if any(p["depthwise"].startswith(m + ".") for m in members)]
        unique = list({p["depthwise"]: p for p in inside}.values())  # weights: once, however many passes
        params = sum(p.numel() for m in members for p in model.get_submodule(m).parameters())
        madds = sum(by_name.get(m, 0) for m in members)
        rows.append({"module": label, "params": params, "madds": madds, "separable": len(unique),
                     "standard_params": params + sum(p["standard_params"] - p["params"] for p in unique),
                     "standard_madds": madds + copies * sum(p["standard_madds"] - p["madds"] for p in inside)})
    counted = sum(r["madds"] for r in rows)
    if counted != total:
        rows.append({"module": "other (outside these modules)", "params": 0, "madds": total - counted,
                     "separable": 0, "standard_params": 0, "standard_madds": total - counted})
    return {"rows": rows, "separable_convolutions": separable, "madds": total,
            "params": sum(p.numel() for p in model.parameters()),
            "standard_madds": sum(r["standard_madds"] for r in rows),
            "standard_params": sum(r["standard_params"] for r in rows)}
