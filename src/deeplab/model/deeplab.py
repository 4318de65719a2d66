"""DeepLabV3 and DeepLabV3+ (Chen et al. 2017, 2018): encoder, ASPP, optional decoder, logits."""

import torch
from torch import nn

from deeplab.model.aspp import ASPP, paper_rates
from deeplab.model.checkpointing import checkpoint_encoder
from deeplab.model.decoder import Decoder
from deeplab.model.encoder import LOW_LEVEL_INDEX, LOW_LEVEL_STRIDE, apply_multi_grid, build_encoder
from deeplab.model.layers import upsample_on_grid


class DeepLab(nn.Module):
    """DeepLabV3+ when `decoder` is given (a dict of Decoder arguments), DeepLabV3 when it is None.
    `aspp` holds ASPP arguments; without `rates` (or with rates None) the ASPP gets the paper's
    rates for `output_stride`.

    Takes images of any size; returns logits of shape (N, num_classes, H, W) at the input's size.
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50", weights: str | None = None,
                 output_stride: int = 16, aspp: dict | None = None, decoder: dict | None = None,
                 multi_grid=None, in_channels: int = 3):
        super().__init__()
        self.backbone_name = backbone
        self.in_channels = in_channels  # image channels: 3 for RGB, more for multi-band inputs
        self.output_stride = output_stride
        self.multi_grid = tuple(multi_grid) if multi_grid else None
        self.activation_checkpointing = False  # see set_activation_checkpointing
        self.encoder = self._build_encoder(weights, output_stride)
        channels = self.encoder.out_channels
        aspp = dict(aspp or {})
        if aspp.get("rates") is None:
            aspp["rates"] = paper_rates(output_stride)
        self.aspp = ASPP(channels[-1], **aspp)
        aspp_channels = self.aspp.project.conv.out_channels
        self.decoder = Decoder(channels[LOW_LEVEL_INDEX], aspp_channels, **decoder) if decoder is not None else None
        head_in = self.decoder.out_channels if self.decoder is not None else aspp_channels
        self.classifier = nn.Conv2d(head_in, num_classes, kernel_size=1)

    def _build_encoder(self, weights: str | None, output_stride: int) -> nn.Module:
        encoder = build_encoder(self.backbone_name, weights=weights, output_stride=output_stride,
                                in_channels=self.in_channels)
        if self.multi_grid:
            apply_multi_grid(encoder, self.multi_grid, output_stride)
        return encoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.encoder(images)
        x = self.aspp(features[-1])
        stride = self.output_stride
        if self.decoder is not None:
            x = self.decoder(x, features[LOW_LEVEL_INDEX], stride // LOW_LEVEL_STRIDE)
            stride = LOW_LEVEL_STRIDE
        logits = self.classifier(x)
        return upsample_on_grid(logits, images.shape[2:], stride)

    def set_activation_checkpointing(self, enabled: bool = True) -> int:
        """Recompute the encoder's activations in the backward pass instead of keeping them (the
        same gradients, less memory, one more encoder forward a step); returns the number of
        blocks checkpointed. State-dict keys are unchanged. Only turning it on is supported."""
        if not enabled:
            raise ValueError("activation checkpointing cannot be turned off on a model; build a new one")
        self.activation_checkpointing = True
        return checkpoint_encoder(self.encoder)

    def set_output_stride(self, output_stride: int) -> None:
        """Re-dilate the encoder for another output stride, keeping every weight, and scale the
        ASPP rates with it (OS16 rates 6, 12, 18 become 12, 24, 36 at OS8), as the paper does
        when it evaluates an OS16-trained model at OS8."""
        if output_stride == self.output_stride:
            return
        device = next(self.parameters()).device
        with torch.device(device):  # built where the weights are (on "meta" when only shapes are counted)
            encoder = self._build_encoder(None, output_stride)
        encoder.load_state_dict(self.encoder.state_dict(), assign=True)  # the same tensors, no copy
        self.encoder = encoder.train(self.encoder.training)
        if self.activation_checkpointing:  # the new encoder's blocks, as the old one's were
            checkpoint_encoder(self.encoder)
        factor = self.output_stride / output_stride
        self.aspp.set_rates([round(r * factor) for r in self.aspp.rates])
        self.output_stride = output_stride
