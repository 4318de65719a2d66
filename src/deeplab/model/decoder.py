"""DeepLabV3+ decoder (Sec. 3.1, Fig. 2 of the paper)."""

import torch
from torch import nn

from deeplab.model.layers import ConvBNReLU, conv3x3, upsample_on_grid


class Decoder(nn.Module):
    """Project the stride-4 low-level feature to few channels (48) so it does not outweigh the
    encoder output, concatenate it with the upsampled ASPP output, refine with 3x3 convs."""

    def __init__(self, low_level_in: int, aspp_channels: int, low_level_channels: int = 48,
                 channels: int = 256, num_convs: int = 2, separable: bool = True, depthwise_bn_relu: bool = True):
        super().__init__()
        self.project = ConvBNReLU(low_level_in, low_level_channels, kernel_size=1)
        convs, in_channels = [], aspp_channels + low_level_channels
        for _ in range(num_convs):
            convs.append(conv3x3(in_channels, channels, separable=separable, depthwise_bn_relu=depthwise_bn_relu))
            in_channels = channels
        self.refine = nn.Sequential(*convs)
        self.out_channels = in_channels

    def forward(self, aspp_out: torch.Tensor, low_level: torch.Tensor, factor: int = 4) -> torch.Tensor:
        # `factor`: the ASPP output's stride over the low-level feature's (output stride / 4).
        # On the official code's align_corners=True grid at 513 = 16k + 1; at other sizes, kept on it.
        aspp_out = upsample_on_grid(aspp_out, low_level.shape[2:], factor)
        return self.refine(torch.cat([aspp_out, self.project(low_level)], dim=1))
