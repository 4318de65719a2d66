"""Pixels to network inputs, on whatever device they are on: loader workers ship the images as
read (uint8 for 8-bit data, a quarter of float32's bytes across processes and the PCIe bus) and
training, evaluation, prediction and the tools all normalise here, after the transfer."""

from collections.abc import Sequence

import torch


class Normalise:
    """(pixels / max_pixel_value - mean) / std per channel, for N x C x H x W batches of any dtype;
    returns float32. A pad of the mean pixel becomes (nearly, after uint8 rounding) zero."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], max_pixel_value: float = 255.0):
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} values and std {len(std)}; give one of each per channel")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.max_pixel_value = float(max_pixel_value)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.shape[-3] != len(self.mean):
            raise ValueError(f"images of {pixels.shape[-3]} channels, normalisation for {len(self.mean)}")
        shape = (len(self.mean), 1, 1)
        mean = torch.tensor(self.mean, device=pixels.device).view(shape) * self.max_pixel_value
        scale = 1.0 / (torch.tensor(self.std, device=pixels.device).view(shape) * self.max_pixel_value)
        return (pixels - mean).mul_(scale)  # uint8 - float32 is float32: one pass to convert and centre

    def __repr__(self) -> str:
        return f"Normalise(mean={self.mean}, std={self.std}, max_pixel_value={self.max_pixel_value:g})"


def normaliser(data) -> Normalise:
    """The normalisation a data config (or a checkpoint's stored one) describes."""
    return Normalise(list(data.mean), list(data.std), data.get("max_pixel_value", 255))
