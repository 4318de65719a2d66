"""A model prepared once for inference: eval mode, each batch norm folded into the convolution
that feeds it, channels-last weights. Always a copy: the model given (the one training goes on
updating) is never changed."""

import copy
import logging

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

LOG = logging.getLogger("deeplab")  # the project's logger (deeplab.log sets it up; this layer sits below it)

FOLD_TOLERANCE = 1e-4  # largest |folded - unfolded| logit on the probe image, per unit of the largest logit
# oneDNN's channels-last depthwise kernel takes dilations up to 6; above, it runs 3-8x slower than
# the contiguous layout (2048 channels at 33x33: rate 6 1.4 ms, rate 7 29 ms, rate 18 90 ms; contiguous 8 ms)
CHANNELS_LAST_MAX_DEPTHWISE_DILATION = 6


def _conv_bn_pairs(model: nn.Module, probe: torch.Tensor) -> list[tuple[str, str]]:
    """(conv, batch norm) module names where, in a forward pass, the batch norm's input is exactly
    the convolution's output, unchanged (an in-place ReLU between them keeps the tensor but bumps
    its version). Found by running the model, not by tracing its code, so it works for any encoder
    (timm's, smp's, this package's own). A module called more than once is left out."""
    names = {module: name for name, module in model.named_modules()}
    outputs: dict[int, tuple[torch.Tensor, int, str]] = {}  # the tensors are kept, so no id is reused
    pairs, calls = [], {}

    def after_conv(module, args, output):
        calls[module] = calls.get(module, 0) + 1
        outputs[id(output)] = (output, output._version, names[module])

    def before_bn(module, args):
        calls[module] = calls.get(module, 0) + 1
        found = outputs.get(id(args[0]))
        if found is not None and found[0] is args[0] and found[1] == args[0]._version:
            pairs.append((found[2], names[module]))

    hooks = [m.register_forward_hook(after_conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_pre_hook(before_bn) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        with torch.no_grad():
            model(probe)
    finally:
        for hook in hooks:
            hook.remove()
    once = {names[m] for m, n in calls.items() if n == 1}
    convs = [conv for conv, _ in pairs]
    return [(conv, bn) for conv, bn in pairs if conv in once and bn in once and convs.count(conv) == 1]


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def _after_normalising(bn: nn.BatchNorm2d) -> nn.Module | None:
    """What is left of a batch norm module once its normalisation is folded: nothing for torch's
    own; the dropout and activation of timm's BatchNormAct2d; None (do not fold) for other kinds."""
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    if hasattr(bn, "act") and hasattr(bn, "drop"):  # timm.layers.BatchNormAct2d: normalise, drop, act
        return nn.Sequential(bn.drop, bn.act)
    return None


def fold_batch_norm(model: nn.Module, probe: torch.Tensor) -> int:
    """Folds, in place, every batch norm that directly follows a convolution into it (the
    convolution gains the bias; what the batch norm module did after normalising stays); returns
    how many. The model must be in eval mode: the running statistics are what is folded."""
    folded = 0
    for conv_name, bn_name in _conv_bn_pairs(model, probe):
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        rest = _after_normalising(bn)
        if rest is None:
            continue
        _set(model, conv_name, fuse_conv_bn_eval(conv, bn))
        _set(model, bn_name, rest)
        folded += 1
    return folded


def nchw_copy(x: torch.Tensor) -> torch.Tensor:
    """x in the contiguous layout. From channels-last, one 2D transpose an image, which takes torch's
    blocked transpose copy: (2, 2048, 33, 33) in 5.5 ms on this 2-core CPU, against 14.6 ms for
    x.contiguous(), whose strided 4D copy goes element by element."""
    if x.dim() != 4 or x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous()
    channels, height, width = x.shape[1:]
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    for image, source in zip(out, x, strict=True):
        pixels_by_channel = source.permute(1, 2, 0).reshape(height * width, channels)  # a view: no copy
        image.view(channels, height * width).copy_(pixels_by_channel.t())
    return out


class _ContiguousInput:
    """Forward pre-hook: the block's input in the contiguous layout. Blocks fed the same tensor in one
    forward (the ASPP's branches) share one conversion; the root model's forward hook forgets it."""

    def __init__(self):
        self.source = self.version = self.converted = None

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        x = args[0]
        if x is not self.source or x._version != self.version:
            self.source, self.version, self.converted = x, x._version, nchw_copy(x)
        return (self.converted, *args[1:])

    def forget(self, *_) -> None:
        self.source = self.version = self.converted = None


def _to_channels_last(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    return output.contiguous(memory_format=torch.channels_last)


def contiguous_where_channels_last_is_slow(model: nn.Module) -> list[str]:
    """In a channels-last model on the CPU, each block that holds a depthwise convolution dilated
    beyond CHANNELS_LAST_MAX_DEPTHWISE_DILATION (the ASPP's separable branches at rates 12/18, and
    all three at OS8) runs in the contiguous layout: its weights and input converted, its output
    converted back. The whole block, not the convolution alone, so that the wide tensor between
    its depthwise and pointwise steps is never converted; blocks given the same input convert it
    once. Returns the blocks' names."""
    blocks, to_contiguous = [], _ContiguousInput()
    for name, module in model.named_modules():
        if any(isinstance(child, nn.Conv2d) and child.groups > 1 and child.groups == child.in_channels
               and max(child.dilation) > CHANNELS_LAST_MAX_DEPTHWISE_DILATION for child in module.children()):
            for parameter in module.parameters():  # clone: a (C, 1, 3, 3) or 1x1 weight counts as contiguous in
                # both layouts, and the convolution picks its layout from the strides
                if parameter.dim() == 4:
                    parameter.data = parameter.data.clone(memory_format=torch.contiguous_format)
            module.register_forward_pre_hook(to_contiguous)
            module.register_forward_hook(_to_channels_last)
            blocks.append(name)
    if blocks:
        model.register_forward_hook(to_contiguous.forget)
    return blocks


def prepare_for_inference(model: nn.Module, fast: bool, channels_last: bool = True) -> nn.Module:
    """An eval-mode copy; with `fast`, batch norm folded and (unless channels_last=false: ONNX
    export) weights channels-last, but for the blocks where that layout is slow on the CPU. The
    folded copy's logits are checked against the model's on a probe image (to FOLD_TOLERANCE) of
    the model's `in_channels` (3 where it has none)."""
    prepared = copy.deepcopy(model).eval()
    if not fast:
        return prepared
    parameter = next(model.parameters())
    bands = getattr(model, "in_channels", 3)
    probe = torch.randn(1, bands, 65, 65, generator=torch.Generator().manual_seed(0)).to(parameter.device)
    with torch.no_grad():
        expected = prepared(probe)
    fold_batch_norm(prepared, probe)
    if channels_last:
        prepared = prepared.to(memory_format=torch.channels_last)
        if parameter.device.type == "cpu":
            contiguous_where_channels_last_is_slow(prepared)
    with torch.no_grad():
        difference = (prepared(probe.contiguous(memory_format=torch.channels_last)) - expected).abs().max().item()
    tolerance = FOLD_TOLERANCE * max(1.0, expected.abs().max().item())  # fp32 rounding grows with the logits
    if difference > tolerance:
        # A self-check of an optimisation never ends a run: this inference goes without it, and says so
        # (weights a huge learning rate has thrown far out, or a model whose folded output is reused).
        LOG.warning(f"eval.fast: folding batch norm changed the logits by {difference:.3g} (more than "
                    f"{tolerance:.3g}); this inference runs the model unfolded, as eval.fast=false would")
        return copy.deepcopy(model).eval()
    return prepared


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether the device computes bf16 natively (emulated bf16 is slower than fp32), and what says so."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False), torch.cuda.get_device_name(device)
    if device.type == "cpu":
        if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
            return True, "this CPU has AMX"
        if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
            return True, "this CPU has AVX512-BF16"
        return False, "this CPU has no native bf16 (AVX512-BF16 or AMX)"
    return False, f"device {device}"


def inference_precision(precision: str, device: torch.device) -> str:
    """eval.precision as it will run: fp32 or bf16 (auto: bf16 where native)."""
    if precision == "auto":
        return "bf16" if native_bf16(device)[0] else "fp32"
    return precision


def autocast(precision: str, device: torch.device):
    """The arithmetic of inference at `precision` (fp32 or bf16, resolved): fp32 also switches off
    an autocast around it (training's, during validation)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
