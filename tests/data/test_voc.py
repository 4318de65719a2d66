"""The VOC loader on real VOC 2012 files, and the augmentation protocols on them."""

import numpy as np
import pytest
import torch
from PIL import Image

from deeplab.data import transforms as T
from deeplab.data.palette import voc_palette
from deeplab.data.voc import DatasetError, VOCSegmentation
from deeplab.imagenet import MEAN as IMAGENET_MEAN
from deeplab.imagenet import STD as IMAGENET_STD
from deeplab.inference.pixels import Normalise

from ..conftest import VOC_SAMPLES

needs_voc = pytest.mark.skipif(not VOC_SAMPLES.is_dir(), reason="../shared/data/voc2012_samples not present")


@needs_voc
def test_reads_real_voc():
    dataset = VOCSegmentation(VOC_SAMPLES, "train")
    assert len(dataset) == 8
    sample = dataset[0]
    assert sample["name"] == "2007_000039"
    image, mask = sample["image"], sample["mask"]
    assert image.shape[0] == 3 and image.shape[1:] == mask.shape
    values = set(mask.unique().tolist())
    assert 255 in values and values - {255} <= set(range(21)) and len(values - {0, 255}) >= 1


@needs_voc
def test_palette_matches_voc_colours():
    label = Image.open(VOC_SAMPLES / "SegmentationClass" / "2007_000129.png")
    raw = np.array(Image.open(VOC_SAMPLES / "SegmentationClassRaw" / "2007_000129.png"))
    assert np.array_equal(np.array(label), raw)  # palette indices are the class ids
    assert np.array_equal(np.array(label.getpalette()[:21 * 3]).reshape(21, 3), voc_palette(21))


@needs_voc
def test_deeplab_augmentation_on_voc():
    transform = T.deeplab_train(crop_size=513)
    dataset = VOCSegmentation(VOC_SAMPLES, "train", transform=transform)
    for index in range(len(dataset)):
        sample = dataset[index]
        assert sample["image"].shape == (3, 513, 513) and sample["mask"].shape == (513, 513)
        assert set(sample["mask"].unique().tolist()) <= set(range(21)) | {255}


def test_deeplab_scales_are_discrete_and_padding_is_void():
    image = np.full((100, 60, 3), 200, np.uint8)
    mask = np.ones((100, 60), np.uint8)
    transform = T.deeplab_train(crop_size=300, flip=0.0)
    heights = set()
    for _ in range(60):
        out = transform(image=image, mask=mask)
        labelled = (out["mask"] == 1).numpy()
        heights.add(int(labelled.any(axis=1).sum()))
        assert set(out["mask"].unique().tolist()) <= {1, 255}
        assert out["image"].dtype == torch.uint8  # pixels as read; normalised on the device
        padded = Normalise(IMAGENET_MEAN, IMAGENET_STD)(out["image"][None])[0][:, out["mask"] == 255]
        # the mean pixel, rounded to uint8: zero after normalisation, within half a grey level
        assert padded.abs().max() <= 0.5 / (255 * min(IMAGENET_STD)) + 1e-6
    assert heights <= {50, 75, 100, 125, 150, 175, 200} and len(heights) >= 5


def test_keras_moves_image_and_mask_together():
    image = np.zeros((120, 120, 3), np.uint8)
    image[40:80, 30:90] = 255
    mask = np.zeros((120, 120), np.uint8)
    mask[40:80, 30:90] = 7
    transform = T.keras_train(crop_size=120, mean=(0, 0, 0))
    for _ in range(10):
        out = transform(image=image, mask=mask)
        bright = out["image"][0] > 127
        labelled = out["mask"] == 7
        assert set(out["mask"].unique().tolist()) <= {0, 7}  # nearest fill, no void
        agreement = (bright == labelled).float().mean()
        assert agreement > 0.97


def test_missing_root_names_path_and_fix(tmp_path):
    with pytest.raises(DatasetError, match=f"data.root={tmp_path / 'nope'} does not exist; download"):
        VOCSegmentation(tmp_path / "nope", "train")


@needs_voc
def test_missing_split_lists_present_ones():
    with pytest.raises(DatasetError, match=r"test.txt not found; splits present: \['train', 'trainval', 'val'\]"):
        VOCSegmentation(VOC_SAMPLES, "test")
