"""Training runs as a user starts them, `python train.py ...` (run in this process), outputs read back."""

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from deeplab.builders.model import build_model
from deeplab.data.transforms import evaluation
from deeplab.data.voc import VOC_CLASSES, VOCSegmentation
from deeplab.inference.metrics import SegmentationMetrics
from deeplab.inference.multiscale import predict_probs
from deeplab.inference.pixels import normaliser
from deeplab.training.callbacks import CONFIG_KEY

from ..conftest import SMALL, TINY_NET, VOC_SAMPLES, run_script, run_train
from ..data.layouts import write_voc

SUMMARY_KEYS = {"val/mIoU", "val/mIoU_best", "best_ckpt", "last_ckpt", "epochs", "global_step", "params",
                "train_images_per_sec", "duration_s"}


def evaluate(model, config):
    root, num_classes = config.data.root, config.data.num_classes
    dataset, normalise = VOCSegmentation(root, "val", transform=evaluation()), normaliser(config.data)
    metrics = SegmentationMetrics(num_classes)
    model.eval()
    for sample in dataset:
        probs = predict_probs(model, normalise(sample["image"][None]))
        metrics.update(probs.argmax(1), sample["mask"][None])
    return metrics.compute()["mIoU"].item()


@pytest.mark.slow
def test_one_epoch_improves_miou(tmp_path, small_synthetic):
    run_dir = tmp_path / "run"
    result = run_train(run_dir, *SMALL, "data.prepare.num_train=160", "trainer.max_epochs=1", "target_miou=0.0",
                       data_dir=small_synthetic)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["epochs"] == 1 and summary["global_step"] == 20
    reached = summary["reached"]  # the one validation reaches a target of 0: where and when it ran
    assert {k: reached[k] for k in ("target", "val/mIoU", "step", "epoch")} == \
        {"target": 0.0, "val/mIoU": summary["val/mIoU"], "step": 20, "epoch": 1.0}
    assert 0 < reached["seconds"] <= summary["duration_s"]
    assert summary["train_images_per_sec"] > 0 and summary["params"] > 1e6

    checkpoint = torch.load(summary["best_ckpt"], map_location="cpu", weights_only=False)
    config = OmegaConf.create(checkpoint[CONFIG_KEY])
    assert config.data.root == str(small_synthetic / "synthetic_voc")  # resolved, usable on its own
    torch.manual_seed(0)
    untrained = build_model(config.model, config.data.num_classes)
    trained = build_model(config.model, config.data.num_classes)
    trained.load_state_dict({k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()
                             if k.startswith("model.")})
    before = evaluate(untrained, config)
    after = evaluate(trained, config)
    assert after == pytest.approx(summary["val/mIoU_best"], abs=1e-5)  # the checkpoint is the logged model
    print(f"val mIoU untrained {before:.4f}, after one epoch {after:.4f}")
    assert after > before + 0.1, (before, after)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "csv").exists() is False  # logger=none writes no logs
    assert "groups   data=synthetic" in result.stdout  # the one-screen config print


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [["backbone=xception", "os=8"],
                                       ["backbone=resnet101", "os=16", "decoder=deeplabv3"]])
def test_paper_backbones_fast_dev_run(tmp_path, small_synthetic, overrides):
    result = run_train(tmp_path / "run", *SMALL, *overrides, "trainer.fast_dev_run=true", "data.batch_size=2",
                       data_dir=small_synthetic)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("argv, message", [
    (["os=12"], "error: os=12 is not allowed; allowed: 8, 16, 32\n"),
    (["backbone=xceptoin"], "error: backbone=xceptoin is not allowed; allowed: mobilenet_v2, resnet101, resnet18, "
                            "resnet50, xception, xception65 (did you mean xception?)\n"),
    (["optim.lr=-1"], "error: optim.lr=-1 is not allowed; allowed: a number > 0\n"),
    (["model.backbone.name=resnet5O"], "error: model.backbone.name='resnet5O' is neither an smp encoder nor a timm "
                                       "model; did you mean resnet50"),
])
def test_bad_config_is_one_line(tmp_path, argv, message):
    result = run_train(tmp_path / "run", *argv)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_missing_voc_says_where_and_how(tmp_path):
    result = run_train(tmp_path / "run", "data=voc", "logger=none", data_dir=tmp_path / "nowhere")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: data.root={tmp_path / 'nowhere' / 'VOCdevkit' / 'VOC2012'} does not "
                                    "exist; download VOCtrainval_11-May-2012.tar"), result.stderr[-2000:]


@pytest.mark.slow
def test_multirun_sweeps_numeric_output_strides(tmp_path, small_synthetic):
    sweep = tmp_path / "sweep"
    result = run_script("train.py", "-m", "os=8,16", "debug=fast", *SMALL, *TINY_NET,
                        f"paths.data_dir={small_synthetic}", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    strides = sorted(OmegaConf.load(job / ".hydra" / "config.yaml").model.output_stride for job in sweep.iterdir()
                     if job.is_dir())
    assert strides == [8, 16]
    assert all((sweep / str(n) / "summary.json").is_file() for n in (0, 1))


@pytest.mark.slow
@pytest.mark.skipif(not VOC_SAMPLES.is_dir(), reason="../shared/data/voc2012_samples not present")
def test_short_training_on_the_real_voc_samples(tmp_path):
    run_dir = tmp_path / "run"
    result = run_train(run_dir, "data=voc", f"data.root={VOC_SAMPLES}", "backbone=resnet18", "optim=adamw",
                       "data.crop_size=193", "data.batch_size=4", "data.num_workers=0", "logger=none",
                       "trainer.max_epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 4  # 8 training images, batches of 4, two epochs
    assert summary["val/mIoU"] is not None and 0 <= summary["val/mIoU"] <= 1
    assert set(summary["per_class_iou"]) <= set(VOC_CLASSES)


def test_missing_file_stops_training_at_start(tmp_path):
    masks = {name: np.zeros((40, 50), np.uint8) for name in ("a", "b", "c")}
    root = write_voc(tmp_path / "VOC2012", {"train": ["a", "b"], "val": ["c"]}, masks)
    (root / "SegmentationClass" / "b.png").unlink()
    result = run_train(tmp_path / "run", "data=voc", f"data.root={root}", "logger=none", "backbone=resnet18")
    assert result.returncode == 2
    assert result.stderr == f"error: missing mask: {root / 'SegmentationClass' / 'b.png'}\n"
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_progress_bar_switch_wins_over_the_configured_bar(tmp_path, small_synthetic):
    """callbacks.progress_bar builds a TQDM bar; trainer.enable_progress_bar=false drops it instead
    of Lightning refusing the pair."""
    run_dir = tmp_path / "run"
    result = run_train(run_dir, *SMALL, *TINY_NET, "trainer.max_steps=1", "trainer.enable_progress_bar=false",
                       data_dir=small_synthetic)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 0:" not in result.stdout + result.stderr  # no bar drawn
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 1
