"""Over many random draws, augmentation keeps masks to class values and 255, pads labels with 255,
and moves image and mask together."""

import albumentations as A
import numpy as np
import pytest
from hydra.utils import instantiate

from deeplab.builders.model import resolve_normalisation
from deeplab.data import transforms as T

from ..conftest import compose_config
from .layouts import scene

IDENTITY = {"mean": (0.0, 0.0, 0.0)}  # pads with black, which appears nowhere in a scene


def decoded_labels(image: np.ndarray) -> np.ndarray:
    """The label each pixel's colour encodes (label * 60 + 20, see layouts.scene)."""
    return np.rint((image[0].astype(np.float64) - 20) / 60).astype(np.int64)


@pytest.mark.parametrize("name, transform", [
    ("deeplab", T.deeplab_train(crop_size=48, **IDENTITY)),
    ("keras", T.keras_train(crop_size=64, **IDENTITY)),
    ("none", T.plain_train(crop_size=48, **IDENTITY)),
])
def test_masks_stay_labels_padding_is_void_and_pixels_stay_aligned(name, transform):
    agreement, padded_draws = [], 0
    for seed in range(150):
        image, mask = scene(seed, height=40, width=56)
        out = transform(image=image, mask=mask)
        pixels, labels = out["image"].numpy(), out["mask"].numpy()
        assert set(np.unique(labels).tolist()) <= {0, 1, 2, 255}, name
        padding = (pixels == 0).all(axis=0)  # the fill colour, 255 * mean = 0, appears nowhere in a scene
        assert np.array_equal(labels == 255, padding), name  # void exactly where the image was padded
        padded_draws += bool(padding.any())
        labelled = labels != 255
        agreement.append((decoded_labels(pixels)[labelled] == labels[labelled]).mean())
    # every pixel keeps its label, but for the few that bilinear resampling blends at band edges
    assert np.mean(agreement) > 0.97 and min(agreement) > 0.9, (name, np.mean(agreement), min(agreement))
    if name != "keras":  # keras pads only when its crop exceeds the image
        assert padded_draws > 10


def test_deeplab_scales_come_from_the_official_set():
    transform = T.deeplab_train(crop_size=400, flip=0.0, **IDENTITY)
    image, mask = scene(0, height=40, width=56)
    heights = {int((transform(image=image, mask=mask)["mask"] != 255).any(axis=1).sum()) for _ in range(200)}
    assert heights == {20, 30, 40, 50, 60, 70, 80}  # 0.5 .. 2.0 in steps of 0.25, all drawn


def test_an_empty_scale_range_is_refused_by_the_transform_too():
    with pytest.raises(ValueError, match="scale_min=2.0 is above scale_max=1.5"):
        T.deeplab_train(crop_size=48, scale_min=2.0, scale_max=1.5)


def test_crop_flip_crops_the_image_at_its_own_scale():
    """aug=crop_flip (the synthetic recipe's): every crop is a window of the image, as it is or mirrored."""
    cfg = compose_config("aug=crop_flip", "data.crop_size=32")
    resolve_normalisation(cfg)
    transform = instantiate(cfg.aug)
    image = np.random.default_rng(0).integers(1, 256, (40, 56, 3), dtype=np.uint8)
    mask = np.random.default_rng(1).integers(0, 3, (40, 56), dtype=np.uint8)
    windows = {(y, x, mirrored) for y in range(40 - 32 + 1) for x in range(56 - 32 + 1) for mirrored in (0, 1)}
    found = set()
    for _ in range(100):
        out = transform(image=image, mask=mask)
        pixels, labels = out["image"].numpy().transpose(1, 2, 0), out["mask"].numpy()
        match = [(y, x, m) for y, x, m in windows
                 if np.array_equal(pixels, image[y:y + 32, x:x + 32][:, ::-1] if m else image[y:y + 32, x:x + 32])]
        assert len(match) == 1
        y, x, mirrored = match[0]
        window = mask[y:y + 32, x:x + 32]
        assert np.array_equal(labels, window[:, ::-1] if mirrored else window)
        found.add(mirrored)
    assert found == {0, 1}


def test_photometric_options_change_colours_only():
    cfg = compose_config("aug=deeplab", "aug.brightness=0.4", "aug.contrast=0.4", "aug.hue=0.1", "data.crop_size=48")
    resolve_normalisation(cfg)
    transform = instantiate(cfg.aug)
    assert any(isinstance(t, A.ColorJitter) for t in transform.transforms)
    assert not any(isinstance(t, A.ColorJitter) for t in T.deeplab_train().transforms)  # off by default
    for seed in range(50):
        image, mask = scene(seed, height=40, width=56)
        labels = transform(image=image, mask=mask)["mask"].numpy()
        assert set(np.unique(labels).tolist()) <= {0, 1, 2, 255}
