"""Parameters and multiply-adds of one full inference, counted by torch's FlopCounterMode.

Both count the passes inference runs (deeplab.inference.multiscale): the input padded to
k * output_stride + 1, each scale s giving sides (side - 1) * s + 1, flipping doubling the passes.
They differ in how an atrous convolution is counted:
- `plain`: what PyTorch runs, H x W output positions.
- `tf`: how the DeepLab paper's figures were counted. TensorFlow runs an atrous convolution as
  space-to-batch on an input padded to a multiple of the rate, so a rate-r conv over an H x W output
  costs ceil(H / r) * r x ceil(W / r) * r positions.
"""

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from deeplab.inference.multiscale import grid_size, padded_logits, scaled_size

CONVENTIONS = ("plain", "tf")
_aten = torch.ops.aten


def _tf_conv_flop(x_shape, w_shape, _bias, _stride, _padding, dilation, transposed, *args, out_shape=None,
                  **kwargs) -> int:
    padded = list(out_shape)
    for axis, rate in enumerate(dilation):
        if rate > 1:
            padded[2 + axis] = math.ceil(padded[2 + axis] / rate) * rate
    return conv_flop_count(list(x_shape), list(w_shape), padded, transposed=transposed)


@torch.no_grad()
def count_madds(model: nn.Module, input_size: Sequence[int] = (513, 513), scales: Sequence[float] = (1.0,),
                flip: bool = False, convention: str = "plain") -> dict:
    """Multiply-adds of every scaled (and flipped) pass of one inference, and the parameter count."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention={convention} is not allowed; allowed: {', '.join(CONVENTIONS)}")
    mapping = {_aten.convolution: _tf_conv_flop, _aten._convolution: _tf_conv_flop} if convention == "tf" else {}
    # Counted on the meta device: shapes only, no arithmetic, so any model and size counts in a
    # fraction of a second (the counts are identical to a real run's). A model already there (as
    # tools/paper.py builds them) is counted as it is, in eval mode, and handed back in its mode.
    on_meta = all(t.is_meta for t in [*model.parameters(), *model.buffers()])
    shapes_only = model if on_meta else copy.deepcopy(model).to("meta")
    modes = {module: module.training for module in shapes_only.modules()}
    shapes_only.eval()
    passes = []
    base = grid_size(input_size, getattr(model, "output_stride", 1))
    try:
        for scale in scales:
            size = scaled_size(base, scale)
            counter = FlopCounterMode(display=False, custom_mapping=mapping)
            with counter:
                channels = getattr(model, "in_channels", 3)
                padded_logits(shapes_only, torch.zeros(1, channels, *size, device="meta"))
            madds = counter.get_total_flops() // 2  # the counter reports 2 FLOPs per multiply-add
            passes.append({"scale": scale, "size": list(size), "madds": madds})
    finally:
        for module, training in modes.items():
            module.training = training
    copies = 2 if flip else 1
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "madds": copies * sum(p["madds"] for p in passes),
        "passes": passes,
        "flip": flip,
        "convention": convention,
    }

