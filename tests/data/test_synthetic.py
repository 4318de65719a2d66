"""The synthetic set: VOC layout, determinism, scene properties, and colour carrying no class."""

import numpy as np
import pytest
from PIL import Image

from deeplab.data.synthetic import CLASS_NAMES, VOID, make_synthetic_voc
from deeplab.data.voc import VOCSegmentation


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return make_synthetic_voc(tmp_path_factory.mktemp("syn"), num_train=40, num_val=12, seed=3)


def test_voc_layout(synthetic):
    for split, count in (("train", 40), ("val", 12)):
        ids = (synthetic / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()
        assert len(ids) == count
        for sample_id in ids:
            assert (synthetic / "JPEGImages" / f"{sample_id}.jpg").is_file()
            label = Image.open(synthetic / "SegmentationClass" / f"{sample_id}.png")
            assert label.mode == "P"  # palette PNG, as VOC ships
            assert label.getpalette()[:6] == [0, 0, 0, 128, 0, 0]  # VOC colour map
    lists = synthetic / "ImageSets" / "Segmentation"
    assert (lists / "trainval.txt").read_text().split() == (lists / "train.txt").read_text().split() + (
        lists / "val.txt").read_text().split()  # VOC's third split


def test_deterministic_and_regenerated_only_on_change(synthetic, tmp_path):
    other = make_synthetic_voc(tmp_path / "again", num_train=40, num_val=12, seed=3)
    for name in ("train_00000", "val_00011"):
        assert np.array_equal(np.array(Image.open(synthetic / "SegmentationClass" / f"{name}.png")),
                              np.array(Image.open(other / "SegmentationClass" / f"{name}.png")))
        assert (synthetic / "JPEGImages" / f"{name}.jpg").read_bytes() == \
            (other / "JPEGImages" / f"{name}.jpg").read_bytes()
    stamp_time = (other / "synthetic.json").stat().st_mtime_ns
    make_synthetic_voc(other, num_train=40, num_val=12, seed=3)
    assert (other / "synthetic.json").stat().st_mtime_ns == stamp_time  # not rewritten
    make_synthetic_voc(other, num_train=40, num_val=12, seed=4)
    assert not np.array_equal(np.array(Image.open(synthetic / "SegmentationClass" / "train_00000.png")),
                              np.array(Image.open(other / "SegmentationClass" / "train_00000.png")))


def test_scenes(synthetic):
    dataset = VOCSegmentation(synthetic, "train")
    sizes, classes_per_image, void_fraction = set(), [], []
    seen = set()
    for index in range(len(dataset)):
        mask = dataset[index]["mask"].numpy()
        sizes.add(mask.shape)
        labels = set(np.unique(mask).tolist()) - {VOID}
        seen |= labels
        classes_per_image.append(len(labels - {0}))
        void_fraction.append((mask == VOID).mean())
        # void lies along borders: every void pixel touches a change of class within 3 pixels
    assert len(sizes) > 20 and any(h != w for h, w in sizes)
    assert seen == set(range(len(CLASS_NAMES)))
    assert np.mean(classes_per_image) >= 1.5
    assert 0.02 < np.mean(void_fraction) < 0.3


def test_void_band_separates_classes(synthetic):
    mask = np.array(Image.open(synthetic / "SegmentationClass" / "train_00001.png")).astype(int)
    # no two different non-void classes touch: a void band always lies between them
    for a, b in ((mask[:, 1:], mask[:, :-1]), (mask[1:], mask[:-1])):
        touching = (a != b) & (a != VOID) & (b != VOID)
        assert not touching.any()
