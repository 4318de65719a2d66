"""Loader workers ship pixels as read and labels as uint8; one Normalise turns the pixels into
network inputs on the device, with the arithmetic albumentations' Normalize did in the workers before."""

import albumentations as A
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from deeplab.data import transforms as T
from deeplab.data.voc import VOCSegmentation
from deeplab.imagenet import MEAN as IMAGENET_MEAN
from deeplab.imagenet import STD as IMAGENET_STD
from deeplab.inference.pixels import Normalise, normaliser

from ..conftest import compose_config
from ..data.layouts import write_voc


@pytest.mark.parametrize("dtype, bands, max_pixel_value, mean, std", [
    (np.uint8, 3, 255, IMAGENET_MEAN, IMAGENET_STD),
    (np.uint8, 3, 255, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # Xception-65's statistics
    (np.uint16, 4, 65535, (0.3, 0.4, 0.5, 0.6), (0.1, 0.2, 0.3, 0.4)),  # 16-bit multi-band
    (np.float32, 2, 1.0, (0.2, 0.7), (0.5, 0.25)),  # float .npy bands
])
def test_device_normalisation_equals_the_worker_normalisation_it_replaces(dtype, bands, max_pixel_value, mean, std):
    rng = np.random.default_rng(0)
    image = (rng.random((37, 41, bands)) * max_pixel_value).astype(dtype)
    expected = A.Normalize(mean=mean, std=std, max_pixel_value=max_pixel_value)(image=image)["image"]
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None]
    normalised = Normalise(mean, std, max_pixel_value)(pixels)
    assert normalised.dtype == torch.float32
    np.testing.assert_allclose(normalised[0].permute(1, 2, 0).numpy(), expected, rtol=0, atol=2e-6)


def test_a_training_batch_crosses_as_uint8_and_padding_normalises_to_zero(tmp_path):
    masks = {f"im{i}": np.full((375, 500), i % 3, np.uint8) for i in range(4)}
    root = write_voc(tmp_path / "voc", {"train": list(masks)}, masks)
    dataset = VOCSegmentation(root, split="train", transform=T.deeplab_train(crop_size=513, scale_max=1.0))
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    pixels, labels = batch["image"], batch["mask"]
    assert pixels.dtype == torch.uint8 and pixels.shape == (4, 3, 513, 513)
    assert pixels.nbytes * 4 == 16 * 3 * 513 * 513  # a batch of 16 would be 12.6 MB, not float32's 50.5 MB
    assert labels.dtype == torch.uint8 and labels.nbytes * 4 == 16 * 513 * 513  # 4.2 MB, not int64's 33.7 MB
    assert (labels == 255).any(dim=(1, 2)).all()  # 375-pixel sides at scales up to 1 are always padded
    normalised = Normalise(IMAGENET_MEAN, IMAGENET_STD)(pixels)
    padded = normalised.permute(1, 0, 2, 3)[:, labels == 255]
    assert padded.abs().max() <= 0.5 / (255 * min(IMAGENET_STD)) + 1e-6  # the mean pixel, rounded to uint8


def test_bands_read_as_floats_stay_float(tmp_path):
    image = np.random.default_rng(1).random((20, 24, 4)).astype(np.float32)
    out = T.evaluation()(image=image)["image"]
    assert out.dtype == torch.float32 and out.shape == (4, 20, 24)


def test_the_config_decides_the_statistics():
    cfg = compose_config("data.mean=[0.1,0.2,0.3]", "data.std=[0.4,0.5,0.6]", "data.max_pixel_value=1023")
    normalise = normaliser(cfg.data)
    assert (normalise.mean, normalise.std, normalise.max_pixel_value) == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6), 1023)
    pixels = torch.full((1, 3, 2, 2), 1023.0)
    assert torch.allclose(normalise(pixels)[0, :, 0, 0], torch.tensor([0.9 / 0.4, 0.8 / 0.5, 0.7 / 0.6]))
