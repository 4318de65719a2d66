"""data.in_channels: multi-band images (.tif through tifffile, .npy) train, evaluate, predict and export;
what cannot work with them is refused in one line."""

import json

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from deeplab.builders.checkpoint import load_checkpoint
from deeplab.data.folder import FolderSegmentation

from ..conftest import TINY_NET, assert_one_line_error, run_entry, run_script
from .layouts import save_index, scene

BANDS = ["data.in_channels=4", "data.mean=[0.5,0.5,0.5,0.5]", "data.std=[0.25,0.25,0.25,0.25]"]
FOLDER = ["data=folder", "data.num_classes=3", "data.class_names=[sky,road,car]", *BANDS]


def four_band(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB bands and a fourth, 'near-infrared' band that alone tells the classes apart."""
    image, mask = scene(seed, 40, 56)
    infrared = (mask * 100 + 5).astype(np.uint8)[..., None]
    return np.concatenate([image, infrared], axis=-1), mask


def write_band_folder(root, count: int = 6, suffix: str = ".tif"):
    for i in range(count):
        image, mask = four_band(i)
        (root / "images").mkdir(parents=True, exist_ok=True)
        if suffix == ".npy":
            np.save(root / "images" / f"im{i}.npy", image)
        else:
            tifffile.imwrite(root / "images" / f"im{i}{suffix}", image)
        save_index(root / "masks" / f"im{i}.png", mask)
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("".join(f"im{i}\n" for i in range(count - 2)))
    (root / "splits" / "val.txt").write_text(f"im{count - 2}\nim{count - 1}\n")
    return root


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_bands_are_read_as_written(suffix, tmp_path):
    root = write_band_folder(tmp_path / "mine", suffix=suffix)
    dataset = FolderSegmentation(root, "train", in_channels=4)
    image, mask = dataset.load(1)
    written, labels = four_band(1)
    assert image.shape == (40, 56, 4) and np.array_equal(image, written) and np.array_equal(mask, labels)


@pytest.mark.slow
def test_a_four_band_tif_folder_trains_evaluates_and_predicts(tmp_path, capsys, monkeypatch):
    root, run_dir = write_band_folder(tmp_path / "mine"), tmp_path / "run"
    code, stderr = run_entry("train.py", *FOLDER, f"data.root={root}", *TINY_NET, "data.crop_size=32",
                             "data.batch_size=2", "data.num_workers=0", "logger=none", "trainer.max_epochs=1",
                             f"hydra.run.dir={run_dir}", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-3000:]
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    stem = load_checkpoint(checkpoint)["state_dict"]["model.encoder.model.conv1.0.weight"]  # test_resnet's deep stem
    assert stem.shape[1] == 4  # the encoder's first convolution takes the four bands

    evaluated = run_script("eval.py", f"ckpt_path={checkpoint}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0 <= metrics["mIoU"] <= 1

    out = tmp_path / "masks"
    predicted = run_script("predict.py", f"ckpt_path={checkpoint}", f"input={root / 'images'}", f"output={out}")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*.png")) == [f"im{i}.png" for i in range(6)]
    assert len(list(out.glob("*_overlay.jpg"))) == 6
    photos = tmp_path / "photos"  # RGB photos for a four-band model: one line naming both, not one error a file
    photos.mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(photos / f"p{i}.jpg")
    predicted = run_script("predict.py", f"ckpt_path={checkpoint}", f"input={photos}", f"output={tmp_path / 'rgb'}")
    assert predicted.returncode == 2 and predicted.stderr.count("error:") == 1, predicted.stderr[-2000:]
    assert (f"holds a model of 4-band images (data.in_channels=4), read from .tif, .tiff, .npy files; "
            f"input={photos} has 2 .jpg images of at most 3 channels") in predicted.stderr

    onnx_file = tmp_path / "bands.onnx"  # the exported graph takes the four bands, checked against PyTorch
    exported = run_script("tools/export.py", f"ckpt_path={checkpoint}", f"output={onnx_file}", "example_size=[33,33]",
                          "check_size=[17,25]")
    assert exported.returncode == 0, exported.stderr[-3000:]
    report = json.loads(exported.stdout.strip().splitlines()[-1])
    assert report["max_abs_diff"] <= 1e-4
    import onnx

    graph = onnx.load(str(onnx_file))
    assert graph.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 4
    assert {p.key: json.loads(p.value) for p in graph.metadata_props}["in_channels"] == 4

    checked = run_script("tools/check_data.py", *FOLDER, f"data.root={root}")
    assert checked.returncode == 0, checked.stdout[-2000:]
    assert "image sizes (h x w): 40x56 to 40x56" in checked.stdout and "no problems found" in checked.stdout


def test_a_band_count_the_files_do_not_have_is_named(tmp_path):
    root = write_band_folder(tmp_path / "mine")
    with pytest.raises(ValueError, match=r"im0.tif: image of shape \[40, 56, 4\]; data.in_channels=5 needs height x "
                                         r"width x 5"):
        FolderSegmentation(root, "train", in_channels=5).load(0)
    with pytest.raises(ValueError, match=r"data.in_channels=4 images are read from .tif, .tiff, .npy files, not .png"):
        FolderSegmentation(root, "train", masks="masks", images="masks", in_channels=4).load(0)


@pytest.mark.parametrize("args, message", [
    (["data.in_channels=4"], "data.mean=null is not allowed; allowed: 4 numbers with data.in_channels=4 (the "
                             "encoders' pretrained statistics are for RGB)"),
    ([*BANDS, "data.mean=[0.5,0.5,0.5]"], "data.mean=[0.5, 0.5, 0.5] is not allowed; allowed: null or 4 numbers, "
                                          "one a channel (data.in_channels=4)"),
    ([*BANDS, "aug.brightness=0.2"], "aug.brightness=0.2 is not allowed; allowed: 0 with data.in_channels=4 (colour "
                                     "jitter works on RGB"),
])
def test_what_cannot_work_with_bands_is_one_line(args, message, tmp_path, capsys, monkeypatch):
    root = write_band_folder(tmp_path / "mine")
    code, stderr = run_entry("train.py", "data=folder", "data.num_classes=3", "data.class_names=[sky,road,car]",
                             f"data.root={root}", *args, f"hydra.run.dir={tmp_path / 'run'}", capsys=capsys,
                             monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, message)


def test_an_rgb_dataset_refuses_bands(tmp_path, capsys, monkeypatch):
    code, stderr = run_entry("train.py", "data=voc", *BANDS, f"hydra.run.dir={tmp_path / 'run'}", capsys=capsys,
                             monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "data.in_channels=4 is not allowed with deeplab.data.voc.VOCSegmentation; "
                                        "allowed: 3, or data=folder, which reads multi-band .tif/.tiff/.npy images")


def test_the_bands_reach_the_model_and_its_cost():
    from deeplab.inference.complexity import count_madds
    from deeplab.model import DeepLab

    model = DeepLab(num_classes=3, backbone="tu-test_resnet", in_channels=4, aspp={"channels": 16},
                    decoder={"channels": 16, "low_level_channels": 8, "num_convs": 2, "separable": True})
    assert model(torch.randn(2, 4, 33, 33)).shape == (2, 3, 33, 33)
    model.set_output_stride(8)  # re-dilated with the same four-band stem
    assert model.eval()(torch.randn(1, 4, 33, 33)).shape == (1, 3, 33, 33)
    assert count_madds(model, (33, 33))["madds"] > 0
