"""tools/check_data.py finds every planted problem, names its file, and passes a clean set."""

import json

import numpy as np
from PIL import Image

from ..conftest import run_script
from .layouts import save_index, save_palette, save_rgb, scene, write_voc


def check_data(*args: str):
    return run_script("tools/check_data.py", *args)


def folder_args(root) -> list[str]:
    return ["data=folder", f"data.root={root}", "data.num_classes=3", "data.class_names=[sky,road,car]"]


def test_clean_dataset_passes(tmp_path):
    masks = {"a": np.zeros((24, 30), np.uint8), "b": np.full((24, 30), 2, np.uint8)}
    masks["b"][:, :5] = 255
    root = write_voc(tmp_path / "VOC2012", {"train": ["a"], "val": ["b"]}, masks)
    result = check_data("data=voc", f"data.root={root}", "data.num_classes=3", "data.class_names=[x,y,z]")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "split train: 1 samples" in result.stdout and "split val: 1 samples" in result.stdout
    assert "image sizes (h x w): 24x30 to 24x30" in result.stdout
    assert "no problems found" in result.stdout and "problem:" not in result.stdout
    clean = {"samples": 1, "problems": 0, "notes": 0}
    assert json.loads(result.stdout.splitlines()[-1]) == {"splits": {"train": clean, "val": clean}, "problems": 0,
                                                          "notes": 0}


def test_every_planted_problem_is_named(tmp_path):
    root = tmp_path / "mine"
    images, masks = root / "images", root / "masks"
    image, mask = scene(0, 24, 30)
    for name in ("good", "mismatch", "values", "nomask", "gray", "rgba", "colourmask"):
        save_rgb(images / f"{name}.png", image)
        save_palette(masks / f"{name}.png", mask)
    (images / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    save_palette(masks / "broken.png", mask)
    save_palette(masks / "mismatch.png", np.zeros((20, 30), np.uint8))
    bad_values = mask.copy()
    bad_values[0, 0] = 7
    save_index(masks / "values.png", bad_values)
    (masks / "nomask.png").unlink()
    save_rgb(images / "gray.png", image[..., 0], mode="L")
    save_rgb(images / "rgba.png", np.dstack([image, np.full(image.shape[:2], 255, np.uint8)]), mode="RGBA")
    Image.fromarray(image).save(masks / "colourmask.png")
    (root / "splits").mkdir()
    names = ["good", "broken", "mismatch", "values", "nomask", "gray", "rgba", "colourmask"]
    (root / "splits" / "train.txt").write_text("\n".join(names) + "\n")
    (root / "splits" / "val.txt").write_text("good\n")

    result = check_data(*folder_args(root))
    assert result.returncode == 1, result.stdout + result.stderr
    problems = [line.strip().removeprefix("problem: ") for line in result.stdout.splitlines() if "problem:" in line]
    expected = [
        f"unreadable image: {images / 'broken.jpg'}",
        f"size mismatch: image 30x24, mask 30x20: {masks / 'mismatch.png'}",
        f"mask values [7] outside 0..2 and not ignore_index=255: {masks / 'values.png'}",
        f"missing mask: {masks / 'nomask.png'}",
        f"mask of mode RGB (expected a palette or 8-bit index PNG): {masks / 'colourmask.png'}",
        "1 images are in both train and val, first: good",  # val would read training images
    ]
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), (problem, start)
    assert "6 problems found (2 notes" in result.stdout
    assert "split train: 8 samples" in result.stdout and "split val: 1 samples" in result.stdout
    assert "sky" in result.stdout and "(ignore)" in result.stdout  # the class pixel frequencies


def test_a_split_that_cannot_open_is_a_problem(tmp_path):
    root = write_voc(tmp_path / "VOC2012", {"train": ["a"]}, {"a": np.zeros((24, 30), np.uint8)})
    result = check_data("data=voc", f"data.root={root}")
    assert result.returncode == 1
    assert f"problem: split list {root / 'ImageSets' / 'Segmentation' / 'val.txt'} not found" in result.stdout



def test_conversions_training_makes_are_notes_and_classes_get_default_names(tmp_path):
    """Grayscale and RGBA images are read as RGB by training: notes, not problems. With
    data.num_classes changed and the folder config's two names left, the classes are class_0..3."""
    root = tmp_path / "mine"
    image, mask = scene(0, 24, 30)
    mask = mask % 4
    for name in ("plain", "gray", "rgba", "val"):
        save_rgb(root / "images" / f"{name}.png", image)
        save_index(root / "masks" / f"{name}.png", mask)
    save_rgb(root / "images" / "gray.png", image[..., 0], mode="L")
    save_rgb(root / "images" / "rgba.png", np.dstack([image, np.full(image.shape[:2], 255, np.uint8)]), mode="RGBA")
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("plain\ngray\nrgba\n")
    (root / "splits" / "val.txt").write_text("val\n")

    result = check_data("data=folder", f"data.root={root}", "data.num_classes=4")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.startswith("note: data.num_classes=4 with the dataset's 2 default class names: the classes "
                                    "are named class_0 .. class_3")
    assert [line.split()[0] for line in result.stdout.splitlines() if line.startswith("    class_")] == [
        "class_0", "class_1", "class_2", "class_3"] * 2
    notes = [line.strip() for line in result.stdout.splitlines() if line.startswith("  note: ")]
    assert notes == [f"note: grayscale image (mode L), read as RGB: {root / 'images' / 'gray.png'}",
                     f"note: image with an alpha channel (mode RGBA), read as RGB without it: "
                     f"{root / 'images' / 'rgba.png'}"]
    assert "no problems found (2 notes" in result.stdout
    assert json.loads(result.stdout.splitlines()[-1])["notes"] == 2

    wrong = check_data("data=folder", f"data.root={root}", "data.num_classes=4", "data.class_names=[a,b]")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert wrong.stderr == ("error: data.class_names=['a', 'b'] is not allowed; allowed: exactly data.num_classes=4 "
                            "names\n")
