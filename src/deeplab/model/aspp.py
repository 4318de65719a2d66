"""Atrous Spatial Pyramid Pooling (DeepLabV3, Sec. 3.3; Fig. 5 of DeepLabV3)."""

import torch
import torch.nn.functional as F
from torch import nn

from deeplab.model.layers import ConvBNReLU, conv3x3, set_dilation

PAPER_RATES_AT_OS16 = (6, 12, 18)


def paper_rates(output_stride: int) -> list[int]:
    """The atrous rates the paper gives an output stride: (6, 12, 18) at 16, scaled inversely with
    the stride ((12, 24, 36) at 8, (3, 6, 9) at 32), so the branches see the same image area."""
    if isinstance(output_stride, bool) or not isinstance(output_stride, int) or output_stride <= 0:
        raise ValueError(f"output_stride={output_stride} is not allowed; allowed: 8, 16, 32")
    return [round(rate * 16 / output_stride) for rate in PAPER_RATES_AT_OS16]


class ImagePooling(nn.Module):
    """Global average pool, 1x1 conv + BN + ReLU, then broadcast back to the feature size."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.project = ConvBNReLU(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.project(F.adaptive_avg_pool2d(x, 1)).expand(-1, -1, x.shape[2], x.shape[3])
        # materialised in x's layout: a broadcast view has none, and the ASPP's concatenation of a
        # channels-last model would fall back to the contiguous layout
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        return pooled.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


class ASPP(nn.Module):
    """A 1x1 branch, one 3x3 branch per atrous rate, image pooling; concatenated, projected by a
    1x1 conv and regularised by dropout. `post_conv`: a 3x3 conv + BN + ReLU after the dropout, as
    smp's DeepLabV3Plus has (neither paper nor official code does)."""

    def __init__(self, in_channels: int, channels: int = 256, rates=PAPER_RATES_AT_OS16, separable: bool = True,
                 image_pooling: bool = True, dropout: float = 0.1, depthwise_bn_relu: bool = True,
                 post_conv: bool = False):
        super().__init__()
        self.rates = tuple(int(r) for r in rates)
        self.branches = nn.ModuleList([ConvBNReLU(in_channels, channels, kernel_size=1)])
        self.branches.extend(conv3x3(in_channels, channels, rate, separable, depthwise_bn_relu) for rate in self.rates)
        if image_pooling:
            self.branches.append(ImagePooling(in_channels, channels))
        self.project = ConvBNReLU(len(self.branches) * channels, channels, kernel_size=1)
        self.dropout = nn.Dropout(dropout)
        self.post_conv = conv3x3(channels, channels, 1, separable, depthwise_bn_relu) if post_conv else nn.Identity()

    def set_rates(self, rates) -> None:
        """Used when a model trained at one output stride is evaluated at another (rates scale)."""
        if len(rates) != len(self.rates):
            raise ValueError(f"ASPP has {len(self.rates)} atrous branches, got rates {list(rates)}")
        self.rates = tuple(int(r) for r in rates)
        for branch, rate in zip(self.branches[1:1 + len(self.rates)], self.rates, strict=True):
            set_dilation(branch, rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([branch(x) for branch in self.branches], dim=1)
        return self.post_conv(self.dropout(self.project(x)))
