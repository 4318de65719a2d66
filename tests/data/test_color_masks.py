"""data.mask_format=color: RGB masks whose exact colours are classes (data.colors), read by
training and by tools/check_data.py; a colour not in the map is named with its pixel count."""

import json

import numpy as np
import pytest

from deeplab.data.colors import ColorMap
from deeplab.data.folder import FolderSegmentation
from deeplab.data.palette import voc_palette

from ..conftest import TINY_NET, assert_one_line_error, run_entry, run_script
from .layouts import save_index, save_rgb, scene

COLORS = [[0, 0, 0], [128, 200, 255], [255, 64, 0]]  # sky, road, car
ARGS = ["data=folder", "data.num_classes=3", "data.class_names=[sky,road,car]", "data.mask_format=color",
        "data.colors=[[0,0,0],[128,200,255],[255,64,0]]"]


def write_color_folder(root, count: int = 6):
    """Each image's colour masks beside the index masks they paint (to compare the reading with)."""
    for i in range(count):
        image, mask = scene(i, 40, 56)
        save_rgb(root / "images" / f"im{i}.png", image)
        save_rgb(root / "masks" / f"im{i}.png", np.array(COLORS, np.uint8)[mask])
        save_index(root / "index" / f"im{i}.png", mask)
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("".join(f"im{i}\n" for i in range(count - 2)))
    (root / "splits" / "val.txt").write_text(f"im{count - 2}\nim{count - 1}\n")
    return root


def test_colour_masks_read_as_the_index_masks_they_paint(tmp_path):
    root = write_color_folder(tmp_path / "mine")
    colour = FolderSegmentation(root, "train", mask_format="color", colors=COLORS, num_classes=3)
    index = FolderSegmentation(root, "train", masks="index")
    for i in range(len(colour)):
        assert np.array_equal(colour.load(i)[1], index.load(i)[1])


def test_a_colour_training_run(tmp_path, capsys, monkeypatch):
    root = write_color_folder(tmp_path / "mine")
    run_dir = tmp_path / "run"
    code, stderr = run_entry("train.py", *ARGS, f"data.root={root}", *TINY_NET, "data.crop_size=32",
                             "data.batch_size=2", "data.num_workers=0", "logger=none", "trainer.max_epochs=1",
                             f"hydra.run.dir={run_dir}", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 2 and set(summary["per_class_iou"]) <= {"sky", "road", "car"}


def test_an_unmapped_colour_is_named_with_its_pixels(tmp_path, capsys, monkeypatch):
    root = write_color_folder(tmp_path / "mine")
    painted = np.array(COLORS, np.uint8)[scene(1, 40, 56)[1]]
    painted[:3, :5] = (250, 60, 0)  # an anti-aliased edge: 15 pixels near the car colour
    painted[10, :2] = (1, 2, 3)  # and 2 more of another
    save_rgb(root / "masks" / "im1.png", painted)
    code, stderr = run_entry("train.py", *ARGS, f"data.root={root}", *TINY_NET, "data.crop_size=32",
                             "data.batch_size=2", "data.num_workers=0", "logger=none", "trainer.max_epochs=1",
                             f"hydra.run.dir={tmp_path / 'run'}", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"{root / 'masks' / 'im1.png'}: colour (250, 60, 0) on 15 pixels is not in "
                                        "data.colors (1 more unknown colours; tools/check_data.py lists them)")
    result = run_script("tools/check_data.py", *ARGS, f"data.root={root}")
    assert result.returncode == 1, result.stderr[-2000:]
    problems = [line.strip() for line in result.stdout.splitlines() if "problem:" in line]
    mask = root / "masks" / "im1.png"
    assert problems == [f"problem: colour (250, 60, 0) on 15 pixels is not in data.colors: {mask}",
                        f"problem: colour (1, 2, 3) on 2 pixels is not in data.colors: {mask}"]


def test_null_colours_are_the_voc_colour_map_with_its_void():
    mask = np.array([[0, 1, 2], [255, 2, 0]], np.uint8)
    labels, unknown = ColorMap(None, num_classes=3).decode(voc_palette()[mask], ignore_index=255)
    assert unknown == [] and np.array_equal(labels, mask)


@pytest.mark.parametrize("extra, message", [
    (["data.colors=[[0,0,0],[0,0,0],[255,64,0]]"], "data.colors=[[0, 0, 0], [0, 0, 0], [255, 64, 0]] is not "
                                                    "allowed; allowed: distinct colours with data.mask_format=color"),
    (["data.void_color=[0,0,0]"], "data.void_color=[0, 0, 0] is not allowed; allowed: a colour that is no class's"),
    (["data.mask_format=rgb"], "data.mask_format=rgb is not allowed; allowed: index, color"),
])
def test_bad_colour_settings_are_one_line(extra, message, tmp_path, capsys, monkeypatch):
    root = write_color_folder(tmp_path / "mine")
    code, stderr = run_entry("train.py", *ARGS, f"data.root={root}", *extra, f"hydra.run.dir={tmp_path / 'run'}",
                             capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, message)


def test_an_index_mask_read_as_colour_says_so(tmp_path):
    root = write_color_folder(tmp_path / "mine")
    dataset = FolderSegmentation(root, "train", masks="index", mask_format="color", colors=COLORS)
    with pytest.raises(ValueError, match="mask has mode L .an index mask: data.mask_format=index reads it.; "
                                         "data.mask_format=color reads RGB colour masks"):
        dataset.load(0)
