"""Augmentation pipelines built from albumentations; image and mask always move together. They end
in CHW tensors of the pixels as read (uint8 for 8-bit images): normalisation runs on the device
(deeplab.inference.pixels), so loader workers and the host-to-device copy move a quarter of the bytes."""

import math

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2

from deeplab.imagenet import MEAN as IMAGENET_MEAN


def _size(crop_size) -> tuple[int, int]:
    if isinstance(crop_size, int):
        return crop_size, crop_size
    height, width = crop_size
    return int(height), int(width)


def _to_tensor() -> list:
    """HWC to CHW, the dtype kept: no normalisation here."""
    return [ToTensorV2()]


def _photometric(brightness: float, contrast: float, saturation: float, hue: float) -> list:
    """Colour changes on the image only (the mask is untouched); all zero: none."""
    if not any((brightness, contrast, saturation, hue)):
        return []
    return [A.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue, p=1.0)]


def _pad_and_crop(crop_size, mean, ignore_index: int, random: bool = True, max_pixel_value: float = 255.0) -> list:
    """Pad the image with the mean pixel and the label with ignore_index, then crop: padded pixels
    normalise to zero (within uint8 rounding: at most 0.5 / (255 x std)) and never count in the loss."""
    height, width = _size(crop_size)
    fill = tuple(max_pixel_value * m for m in mean)
    crop = A.RandomCrop if random else A.CenterCrop
    return [
        A.PadIfNeeded(min_height=height, min_width=width, position="top_left", border_mode=cv2.BORDER_CONSTANT,
                      fill=fill, fill_mask=ignore_index),
        crop(height, width),
    ]


def deeplab_train(crop_size=513, scale_min: float = 0.5, scale_max: float = 2.0, scale_step: float = 0.25,
                  flip: float = 0.5, ignore_index: int = 255, mean=IMAGENET_MEAN,
                  brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0,
                  hue: float = 0.0, max_pixel_value: float = 255.0) -> A.Compose:
    """The DeepLab protocol: random scale from a discrete set, pad, random crop, horizontal flip."""
    if scale_min > scale_max:  # the range would hold no scale, and the crop would go unscaled
        raise ValueError(f"scale_min={scale_min} is above scale_max={scale_max}")
    scales = np.arange(scale_min, scale_max + scale_step / 2, scale_step) if scale_step > 0 else [scale_min]
    # RandomScale multiplies by 1 + limit: a degenerate range gives exactly one scale.
    rescale = A.OneOf([A.RandomScale(scale_limit=(s - 1, s - 1), p=1.0) for s in scales], p=1.0)
    return A.Compose([rescale, *_pad_and_crop(crop_size, mean, ignore_index, max_pixel_value=max_pixel_value),
                      A.HorizontalFlip(p=flip), *_photometric(brightness, contrast, saturation, hue),
                      *_to_tensor()])


def keras_train(crop_size=513, rotation: float = 20, shift: float = 0.1, shear: float = 0.1, zoom: float = 0.1,
                flip: float = 0.5, ignore_index: int = 255, mean=IMAGENET_MEAN,
                brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0,
                hue: float = 0.0, max_pixel_value: float = 255.0) -> A.Compose:
    """Keras ImageDataGenerator's classic recipe: rotation (degrees), shift (fraction), shear
    (radians, as the classic recipe had it), zoom (fraction), horizontal flip, 'nearest' fill."""
    affine = A.Affine(rotate=(-rotation, rotation), translate_percent=(-shift, shift),
                      shear=(-math.degrees(shear), math.degrees(shear)),
                      scale={"x": (1 - zoom, 1 + zoom), "y": (1 - zoom, 1 + zoom)},
                      border_mode=cv2.BORDER_REPLICATE, p=1.0)
    return A.Compose([affine, A.HorizontalFlip(p=flip),
                      *_pad_and_crop(crop_size, mean, ignore_index, max_pixel_value=max_pixel_value),
                      *_photometric(brightness, contrast, saturation, hue), *_to_tensor()])


def plain_train(crop_size=513, ignore_index: int = 255, mean=IMAGENET_MEAN,
                max_pixel_value: float = 255.0) -> A.Compose:
    """No augmentation: pad and take the centre crop, so that batches still have one size."""
    return A.Compose([*_pad_and_crop(crop_size, mean, ignore_index, random=False, max_pixel_value=max_pixel_value),
                      *_to_tensor()])


def evaluation() -> A.Compose:
    """Whole images as they are: evaluation never crops, and normalises on the device."""
    return A.Compose(_to_tensor())
