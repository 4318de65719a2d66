"""Conv building blocks shared by ASPP and the decoder."""

from torch import nn


class ConvBNReLU(nn.Sequential):
    """Conv, batch norm, ReLU; the conv has no bias since BN follows."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1):
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class SeparableConvBNReLU(nn.Sequential):
    """Depthwise separable 3x3 conv as in DeepLabV3+ (Sec. 3.1): BN and ReLU after the depthwise
    conv as well as after the pointwise one, as the official implementation does."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1):
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size, padding=padding, dilation=dilation,
                      groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def conv3x3(in_channels: int, out_channels: int, dilation: int = 1, separable: bool = True) -> nn.Sequential:
    block = SeparableConvBNReLU if separable else ConvBNReLU
    return block(in_channels, out_channels, kernel_size=3, dilation=dilation)


def set_dilation(block: nn.Sequential, dilation: int) -> None:
    """Change the atrous rate of a 3x3 block in place (weights are unaffected by the rate)."""
    for conv in block.modules():
        if isinstance(conv, nn.Conv2d) and conv.kernel_size[0] > 1:
            conv.dilation = (dilation, dilation)
            conv.padding = (dilation * (conv.kernel_size[0] - 1) // 2,) * 2
