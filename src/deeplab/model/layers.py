"""Conv building blocks shared by ASPP and the decoder, their parts named as timm names them."""

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Sequential):
    """Conv, batch norm, ReLU; the conv has no bias since BN follows."""

    positional_names = {"0": "conv", "1": "bn"}  # what checkpoints before the names called the parts

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1):
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False),
            bn=nn.BatchNorm2d(out_channels),
            act=nn.ReLU(inplace=True),
        ))
        self._register_load_state_dict_pre_hook(_positional_keys(self.positional_names))


class SeparableConvBNReLU(nn.Sequential):
    """Depthwise separable 3x3 conv as in DeepLabV3+ (Sec. 3.1). `depthwise_bn_relu`: BN and ReLU
    after the depthwise conv as well as after the pointwise one, as the official implementation
    does; False: the depthwise conv feeds the pointwise one directly, as in Xception (Chollet 2017,
    Sec. 4.7: faster convergence and better results without the intermediate activation) and smp."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1,
                 depthwise_bn_relu: bool = True):
        padding = dilation * (kernel_size - 1) // 2
        depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, padding=padding, dilation=dilation,
                              groups=in_channels, bias=False)
        between = dict(bn_dw=nn.BatchNorm2d(in_channels), act_dw=nn.ReLU(inplace=True)) if depthwise_bn_relu else {}
        super().__init__(OrderedDict(
            conv_dw=depthwise,
            **between,
            conv_pw=nn.Conv2d(in_channels, out_channels, 1, bias=False),
            bn_pw=nn.BatchNorm2d(out_channels),
            act_pw=nn.ReLU(inplace=True),
        ))
        # checkpoints from before the parts had names all have the BN between (a later option)
        self.positional_names = {"0": "conv_dw", "1": "bn_dw", "3": "conv_pw", "4": "bn_pw"} if between else {}
        self._register_load_state_dict_pre_hook(_positional_keys(self.positional_names))


def _rename(state_dict: dict, prefix: str, names: dict[str, str]) -> None:
    for key in [k for k in state_dict if k.startswith(prefix)]:
        head, _, rest = key[len(prefix):].partition(".")
        if head in names:
            state_dict[f"{prefix}{names[head]}.{rest}"] = state_dict.pop(key)


def _positional_keys(names: dict[str, str]):
    """Checkpoints written before the parts had names (commit 9b9c9ce and earlier) call them by
    position (`0.weight`); this renames such keys on load, for every way a state dict is loaded
    (eval, predict, a Lightning resume)."""

    def rename(state_dict, prefix, *_):
        _rename(state_dict, prefix, names)

    return rename


def with_current_names(model: nn.Module, state_dict: dict) -> dict:
    """A copy of state_dict with the positional keys renamed as loading it into model would: for
    code that matches a state dict's keys against the model's before loading (model.init_from)."""
    renamed = dict(state_dict)
    for name, module in model.named_modules():  # parents first, as load_state_dict visits them
        names = getattr(module, "positional_names", None)
        if names:
            _rename(renamed, f"{name}." if name else "", names)
    return renamed


def conv3x3(in_channels: int, out_channels: int, dilation: int = 1, separable: bool = True,
            depthwise_bn_relu: bool = True) -> nn.Sequential:
    if separable:
        return SeparableConvBNReLU(in_channels, out_channels, 3, dilation, depthwise_bn_relu)
    return ConvBNReLU(in_channels, out_channels, kernel_size=3, dilation=dilation)


def set_dilation(block: nn.Sequential, dilation: int) -> None:
    """Change the atrous rate of a 3x3 block in place (weights are unaffected by the rate)."""
    for conv in block.modules():
        if isinstance(conv, nn.Conv2d) and conv.kernel_size[0] > 1:
            conv.dilation = (dilation, dilation)
            conv.padding = (dilation * (conv.kernel_size[0] - 1) // 2,) * 2


def upsample_on_grid(x: torch.Tensor, size, factor: int) -> torch.Tensor:
    """Bilinear upsampling of a feature map by `factor` to `size`, where pixel i of the feature sits
    over pixel factor * i of the target: what convolutions of stride 2 and padding k // 2 give, at
    any input size. For sizes factor * (n - 1) + 1 (the paper's 513) this is align_corners=True
    exactly; at other sizes (a 512 or 224 crop) align_corners=True would stretch the feature over
    the whole target, shifting it by up to factor - 1 target pixels at the far border and differently
    at each size, so a model trained on 224 crops would be evaluated on another geometry at 241.
    The feature is edge-padded by one pixel, so the target pixels past its last one take that
    pixel's value. Traced (torch.export, ONNX, torch.jit.trace) it takes that one path at every
    size, so that the exported graph keeps the sizes dynamic."""
    height, width = x.shape[-2:]
    grid = (factor * (height - 1) + 1, factor * (width - 1) + 1)
    traced = torch.compiler.is_compiling() or torch.jit.is_tracing()
    if not traced and tuple(size) == grid:  # the paper's sizes, eager: one op, layout kept
        return F.interpolate(x, size=grid, mode="bilinear", align_corners=True)
    padded = F.pad(x, (0, 1, 0, 1), mode="replicate")
    out = F.interpolate(padded, size=(factor * height + 1, factor * width + 1), mode="bilinear", align_corners=True)
    return out[..., : size[0], : size[1]]
