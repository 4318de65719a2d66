"""tools/show_aug.py: the first training samples as training draws them, each image beside its mask
overlay; image and mask stay aligned in what it shows."""

import numpy as np
import pytest
from PIL import Image

from deeplab.builders.model import resolve_normalisation
from deeplab.data.preview import GAP, VOID_COLOUR, class_colours, overlay, preview_grid
from deeplab.tools.show_aug import draw_samples

from ..conftest import SMALL, assert_one_line_error, compose_config, run_entry
from ..data.layouts import save_palette, save_rgb, scene
from ..data.test_augmentation import decoded_labels


@pytest.mark.parametrize("aug", ["deeplab", "keras"])
def test_done_when_command_writes_eight_tiles(aug, tmp_path, small_synthetic, capsys, monkeypatch):
    output = tmp_path / "aug_preview.png"
    code, stderr, stdout = run_entry("tools/show_aug.py", "data=synthetic", f"aug={aug}", "num=8",
                                     f"paths.data_dir={small_synthetic}", *SMALL, f"output={output}",
                                     capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 0, stderr[-2000:]
    assert f"wrote {output}: 8 training samples after aug={aug}" in stdout
    with Image.open(output) as grid:  # 3 x 3 places for 8 tiles of [128 crop | its overlay]
        assert grid.size == (3 * (2 * 128 + GAP) + 2 * GAP, 3 * 128 + 2 * GAP)
        last_place = np.asarray(grid)[2 * (128 + GAP):, 2 * (2 * 128 + 2 * GAP):]
        assert (last_place == 255).all()  # the ninth place is empty: eight tiles


def write_scenes(root, count: int = 12):
    """A VOC-layout set whose pixel colours encode their labels (layouts.scene)."""
    names = [f"s{i:02d}" for i in range(count)]
    for i, name in enumerate(names):
        image, mask = scene(i, height=60, width=80)
        save_rgb(root / "JPEGImages" / f"{name}.jpg", image)
        save_palette(root / "SegmentationClass" / f"{name}.png", mask)
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    for split in ("train", "val"):
        (lists / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    return root


@pytest.mark.parametrize("aug", ["deeplab", "keras"])
def test_drawn_samples_keep_image_and_mask_aligned_and_the_grid_shows_them(aug, tmp_path):
    root = write_scenes(tmp_path / "VOC2012")
    cfg = compose_config("data=voc", f"data.root={root}", f"aug={aug}", "data.crop_size=48", "data.batch_size=4",
                         "data.num_workers=0", "backbone=resnet18")
    resolve_normalisation(cfg)
    images, masks = draw_samples(cfg, 10)
    assert len(images) == len(masks) == 10 and images[0].shape == (48, 48, 3)
    agreement = []
    for image, mask in zip(images, masks, strict=True):
        labelled = mask != 255
        assert set(np.unique(mask).tolist()) <= {0, 1, 2, 255} and labelled.any()
        agreement.append((decoded_labels(image.transpose(2, 0, 1))[labelled] == mask[labelled]).mean())
    assert np.mean(agreement) > 0.97 and min(agreement) > 0.9, agreement
    assert [m.tolist() for m in draw_samples(cfg, 10)[1]] == [m.tolist() for m in masks]  # the seed decides

    colours = class_colours(None, 21)
    grid, corners = preview_grid(images, masks, colours, 255)
    assert len(corners) == 10
    for (top, left), image, mask in zip(corners, images, masks, strict=True):
        assert np.array_equal(grid[top:top + 48, left:left + 48], image)
        shown = grid[top:top + 48, left + 48 + GAP:left + 2 * 48 + GAP]
        assert np.array_equal(shown, overlay(image, mask, colours, 255))
        assert (shown[mask == 255] == VOID_COLOUR).all()


def test_more_samples_than_an_epoch_is_one_line(tmp_path, small_synthetic, capsys, monkeypatch):
    code, stderr = run_entry("tools/show_aug.py", "num=1000", f"paths.data_dir={small_synthetic}", *SMALL,
                             f"output={tmp_path / 'p.png'}", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "num=1000 is not allowed; allowed: 1 .. 48 (the training batches of one "
                                        "epoch of data.train_split=train)")
    code, stderr = run_entry("tools/show_aug.py", "num=0", f"paths.data_dir={small_synthetic}", *SMALL,
                             capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "num=0 is not allowed; allowed: an integer >= 1")
    assert not (tmp_path / "p.png").exists()
