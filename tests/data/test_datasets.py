"""Each dataset layout loads as its benchmark expects: class mapping, void, split lists."""

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image

from deeplab.data.ade20k import ADE20KSegmentation
from deeplab.data.cityscapes import CityscapesSegmentation
from deeplab.data.folder import FolderSegmentation
from deeplab.data.folder import val_names as held_out
from deeplab.data.sbd import prepare_voc_aug
from deeplab.data.voc import VOCSegmentation
from deeplab.errors import DatasetError

from ..conftest import VOC_SAMPLES, compose_config
from .layouts import save_index, save_palette, save_rgb, scene, write_ade, write_cityscapes, write_sbd, write_voc


def band_mask(values, height=24, width=30) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    for i, value in enumerate(values):
        mask[:, i * width // len(values): (i + 1) * width // len(values)] = value
    return mask


def test_voc_splits_and_void(tmp_path):
    masks = {"a": band_mask([0, 15, 255]), "b": band_mask([0, 7]), "c": band_mask([20, 255])}
    root = write_voc(tmp_path / "VOC2012", {"train": ["a", "b"], "val": ["c"], "trainval": ["a", "b", "c"]}, masks)
    for split, ids in (("train", ["a", "b"]), ("val", ["c"]), ("trainval", ["a", "b", "c"])):
        dataset = VOCSegmentation(root, split)
        assert [dataset[i]["name"] for i in range(len(dataset))] == ids
    sample = VOCSegmentation(root, "val")[0]
    assert np.array_equal(sample["mask"].numpy(), masks["c"])  # palette indices are the labels, 255 kept


def test_voc_aug_merges_sbd_and_prefers_voc_labels(tmp_path):
    voc_masks = {"a": band_mask([0, 15, 255]), "b": band_mask([0, 7]), "v": band_mask([0, 3])}
    root = write_voc(tmp_path / "VOC2012", {"train": ["a", "b"], "val": ["v"]}, voc_masks)
    for name in ("s1", "s2", "v"):  # SBD images are VOC images: they sit in JPEGImages
        save_rgb(root / "JPEGImages" / f"{name}.jpg", scene(1, 24, 30)[0])
    sbd_masks = {"a": band_mask([0, 9]), "s1": band_mask([0, 5, 12]), "s2": band_mask([0, 1]),
                 "v": band_mask([0, 4])}
    sbd = write_sbd(tmp_path / "benchmark_RELEASE" / "dataset", {"train": ["a", "s1", "v"], "val": ["s2"]}, sbd_masks)
    list_file = prepare_voc_aug(root, sbd)
    assert list_file.read_text().split() == ["a", "b", "s1", "s2"]  # VOC train + SBD train/val - VOC val
    dataset = VOCSegmentation(root, "train_aug", mask_dir="SegmentationClassAug")
    labels = {dataset[i]["name"]: dataset[i]["mask"].numpy() for i in range(len(dataset))}
    assert np.array_equal(labels["a"], voc_masks["a"])  # VOC's own label, void band included
    assert np.array_equal(labels["s1"], sbd_masks["s1"]) and np.array_equal(labels["s2"], sbd_masks["s2"])
    assert Image.open(root / "SegmentationClassAug" / "s1.png").mode == "P"
    val = VOCSegmentation(root, "val", mask_dir="SegmentationClassAug")
    assert np.array_equal(val[0]["mask"].numpy(), voc_masks["v"])  # val keeps VOC's labels
    stamp = (root / "SegmentationClassAug" / ".prepared.json").stat().st_mtime_ns
    prepare_voc_aug(root, sbd)  # a second call finds the stamp and writes nothing
    assert (root / "SegmentationClassAug" / ".prepared.json").stat().st_mtime_ns == stamp


def test_voc_aug_without_sbd_says_what_to_download(tmp_path):
    root = write_voc(tmp_path / "VOC2012", {"train": ["a"], "val": ["a"]}, {"a": band_mask([0, 1])})
    with pytest.raises(DatasetError, match=f"data.sbd_root={tmp_path / 'nope'} has no cls/ folder; download "
                                           "benchmark.tgz"):
        prepare_voc_aug(root, tmp_path / "nope")


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    label_ids = band_mask([7, 26, 0, 33, 4, 24], width=36)  # road, car, unlabeled, bicycle, static, person
    root = write_cityscapes(tmp_path / "cityscapes", "val", "frankfurt", {"frankfurt_000000_000294": label_ids})
    write_cityscapes(root, "train", "aachen", {"aachen_000000_000019": band_mask([11, 23])})
    dataset = CityscapesSegmentation(root, "val")
    sample = dataset[0]
    assert sample["name"] == "frankfurt_000000_000294"
    assert np.array_equal(sample["mask"].numpy(), band_mask([0, 13, 255, 18, 255, 11], width=36))
    assert np.array_equal(CityscapesSegmentation(root, "train")[0]["mask"].numpy(), band_mask([2, 10]))
    with pytest.raises(DatasetError, match=r"leftImg8bit/test not found; splits present: \['train', 'val'\]"):
        CityscapesSegmentation(root, "test")


def test_ade20k_shifts_labels_and_voids_zero(tmp_path):
    stored = band_mask([0, 1, 150, 13])
    root = write_ade(tmp_path / "ADEChallengeData2016", "training", {"ADE_train_00000001": stored})
    write_ade(root, "validation", {"ADE_val_00000001": band_mask([2, 0])})
    assert np.array_equal(ADE20KSegmentation(root, "training")[0]["mask"].numpy(), band_mask([255, 0, 149, 12]))
    assert np.array_equal(ADE20KSegmentation(root, "validation")[0]["mask"].numpy(), band_mask([1, 255]))


def test_folder_with_split_files_and_both_mask_kinds(tmp_path):
    root = tmp_path / "mine"
    save_rgb(root / "images" / "cat.png", scene(1, 24, 30)[0])
    save_rgb(root / "images" / "dog.jpg", scene(2, 24, 30)[0])
    save_palette(root / "masks" / "cat.png", band_mask([0, 2, 255]))
    save_index(root / "masks" / "dog.png", band_mask([1, 0]))
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("cat\ndog\n")
    (root / "splits" / "val.txt").write_text("dog\n")
    train = FolderSegmentation(root, "train")
    assert [train[i]["name"] for i in range(2)] == ["cat", "dog"]
    assert np.array_equal(train[0]["mask"].numpy(), band_mask([0, 2, 255]))
    assert np.array_equal(train[1]["mask"].numpy(), band_mask([1, 0]))
    assert len(FolderSegmentation(root, "val")) == 1
    with pytest.raises(DatasetError, match=r"splits/test.txt not found; splits present: \['train', 'val'\]"):
        FolderSegmentation(root, "test")
    (root / "splits" / "val.txt").write_text("dog\nemu\n")
    with pytest.raises(DatasetError, match=r"val.txt lists 1 names with no image in .*images, first: emu"):
        FolderSegmentation(root, "val")


def test_folder_without_split_files_divides_by_name(tmp_path):
    root = tmp_path / "mine"
    names = [f"img{i:03d}" for i in range(60)]
    for name in names:
        save_rgb(root / "images" / f"{name}.jpg", scene(1, 16, 20)[0])
        save_index(root / "masks" / f"{name}.png", np.zeros((16, 20), np.uint8))
    train, val = FolderSegmentation(root, "train", val_fraction=0.2), FolderSegmentation(root, "val", val_fraction=0.2)
    train_names = {s.name for s in train.samples}
    val_names = {s.name for s in val.samples}
    assert train_names | val_names == set(names) and not train_names & val_names
    assert len(val_names) == 12  # round(0.2 * 60)
    assert val_names == held_out(names, 0.2)  # by name: adding files moves none but at the margin


def test_missing_mask_fails_fast_naming_it(tmp_path):
    root = write_voc(tmp_path / "VOC2012", {"train": ["a", "b"]}, {"a": band_mask([0]), "b": band_mask([1])})
    (root / "SegmentationClass" / "b.png").unlink()
    dataset = VOCSegmentation(root, "train")
    with pytest.raises(DatasetError, match=r"^missing mask: .*SegmentationClass/b.png$"):
        dataset.check_files()
    (root / "JPEGImages" / "a.jpg").unlink()
    with pytest.raises(DatasetError, match=r"^missing image: .*JPEGImages/a.jpg \(1 more files listed by .*train.txt "
                                           r"are missing too\)$"):
        dataset.check_files()
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n")
    with pytest.raises(DatasetError, match=r"split list .*train.txt is empty"):
        VOCSegmentation(root, "train")


@pytest.mark.skipif(not VOC_SAMPLES.is_dir(), reason="../shared/data/voc2012_samples not present")
def test_real_voc_samples_load_with_their_exact_labels():
    cfg = compose_config("data=voc", f"data.root={VOC_SAMPLES}")
    build = instantiate(cfg.data.dataset)
    names, classes = [], set()
    for split in ("train", "val"):
        dataset = build(split=split)
        for index in range(len(dataset)):
            sample = dataset[index]
            with Image.open(VOC_SAMPLES / "SegmentationClass" / f"{sample['name']}.png") as label:
                assert label.mode == "P"
                assert np.array_equal(sample["mask"].numpy(), np.array(label))
            with Image.open(VOC_SAMPLES / "JPEGImages" / f"{sample['name']}.jpg") as image:
                assert tuple(sample["image"].shape) == (3, image.height, image.width)
                assert np.array_equal(sample["image"].permute(1, 2, 0).numpy(), np.array(image.convert("RGB")))
            names.append(sample["name"])
            classes |= set(sample["mask"].unique().tolist())
    assert len(set(names)) == 9
    assert classes == {0, 1, 2, 5, 6, 7, 8, 9, 11, 12, 15, 18, 20, 255}  # as the samples' README lists
    raw = np.array(Image.open(VOC_SAMPLES / "SegmentationClassRaw" / "2007_000129.png"))
    trainval = build(split="trainval")
    index = next(i for i, sample in enumerate(trainval.samples) if sample.name == "2007_000129")
    assert np.array_equal(trainval[index]["mask"].numpy(), raw)
