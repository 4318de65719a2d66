"""A model folder (tools/export.py format=pretrained): written from a checkpoint, it predicts the
checkpoint's masks and is read by Segmenter.from_pretrained, eval.py and model.init_from."""

import json

import numpy as np
import pytest

import deeplab

from ..conftest import SMALL, TINY_NET, assert_one_line_error, run_entry, run_script


@pytest.fixture(scope="module")
def folder(trained_run, tmp_path_factory):
    written = tmp_path_factory.mktemp("pretrained") / "model"
    result = run_script("tools/export.py", f"ckpt_path={trained_run}", "format=pretrained", f"output={written}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["max_abs_diff"] == 0
    return written


@pytest.mark.slow
def test_the_folder_holds_what_predicting_needs(folder, trained_run):
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                        "preprocessing.json"]
    config = json.loads((folder / "config.json").read_text())
    assert config["model"]["backbone"]["name"] == "tu-test_resnet" and config["model"]["output_stride"] == 16
    assert config["class_names"] == ["background", "blob", "ring", "stripes", "checker"] and config["num_classes"] == 5
    assert len(config["colors"]) == 5 and config["model"]["aspp"]["rates"] == [6, 12, 18]
    preprocessing = json.loads((folder / "preprocessing.json").read_text())
    assert len(preprocessing["mean"]) == len(preprocessing["std"]) == 3 and preprocessing["max_pixel_value"] == 255
    card = (folder / "README.md").read_text()
    summary = json.loads((trained_run / "summary.json").read_text())
    assert f"mIoU {100 * summary['val/mIoU_best']:.2f}% (best)" in card
    assert "python train.py" in card and "model.backbone.name=tu-test_resnet" in card


def test_it_predicts_the_checkpoints_masks(folder, trained_run, small_synthetic):
    images = sorted((small_synthetic / "synthetic_voc" / "JPEGImages").glob("*.jpg"))[:6]
    from_folder = deeplab.Segmenter.from_pretrained(folder, device="cpu").predict([str(p) for p in images])
    from_checkpoint = deeplab.Segmenter.from_checkpoint(trained_run, device="cpu").predict([str(p) for p in images])
    assert [m.tobytes() for m in from_folder] == [m.tobytes() for m in from_checkpoint]
    again = deeplab.Segmenter.from_pretrained(folder, device="cpu")
    copy = again.save_pretrained(folder.parent / "copy")  # the Python way writes the same weights
    assert (copy / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    assert np.array_equal(deeplab.Segmenter.from_pretrained(copy).predict(str(images[0])), from_folder[0])


@pytest.mark.slow
def test_eval_and_init_from_read_it(folder, trained_run, small_synthetic, tmp_path):
    metrics = []
    for source in (trained_run, folder):
        result = run_script("eval.py", f"ckpt_path={source}", "data.num_workers=0",
                            f"hydra.run.dir={tmp_path / source.name}")
        assert result.returncode == 0, result.stderr[-2000:]
        metrics.append(json.loads((tmp_path / source.name / "metrics.json").read_text())["mIoU"])
    assert metrics[0] == metrics[1]
    result = run_script("train.py", f"paths.data_dir={small_synthetic}", *SMALL, *TINY_NET, "trainer.max_steps=1",
                        f"model.init_from={folder}", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "init_from: " in result.stdout and "tensors loaded, 0 re-initialised" in result.stdout
    result = run_script("train.py", f"ckpt_path={folder}", f"hydra.run.dir={tmp_path / 'resumed'}")
    assert_one_line_error(result.returncode, result.stderr, f"ckpt_path={folder} is a model folder, not a run to "
                          f"resume; start a new run from its weights with model.init_from={folder}")


def test_refusals_are_one_line(folder, trained_run, capsys, monkeypatch):
    code, stderr = run_entry("tools/export.py", f"ckpt_path={trained_run}", "format=pretrained", f"output={folder}",
                             capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"output={folder} exists and is not an empty folder; choose a new one")
    code, stderr = run_entry("tools/export.py", f"ckpt_path={trained_run}", "format=pretrained", "os=8",
                             f"output={folder.parent / 'os8'}", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "os=8 applies to format=onnx")
    assert not (folder.parent / "os8").exists()
