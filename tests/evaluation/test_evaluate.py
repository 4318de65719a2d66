"""eval.py as a user runs it on a checkpoint: metrics, files, agreement with training's validation."""

import csv
import json
import shutil

import pytest
import torch
from PIL import Image

from deeplab.inference.prepare import native_bf16

from ..conftest import TINY_NET, VOC_SAMPLES, assert_one_line_error, run_entry, run_script, run_train

METRIC_KEYS = {"mIoU", "pixel_acc", "per_class_iou", "images", "images_per_sec"}
CLASSES = ["background", "blob", "ring", "stripes", "checker"]


def run_eval(out_dir, checkpoint, *args):
    return run_train(out_dir, f"ckpt_path={checkpoint}", *args, script="eval.py")


def test_eval_equals_the_validation_logged_in_training(trained_run, tmp_path):
    summary = json.loads((trained_run / "summary.json").read_text())
    result = run_eval(tmp_path / "eval", summary["best_ckpt"])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert METRIC_KEYS <= metrics.keys()
    assert metrics["mIoU"] == pytest.approx(summary["val/mIoU_best"], abs=1e-6)
    assert summary["val/mIoU_best"] < 0.8 and summary["reached"] is None  # target_miou=0.8 (default) not reached
    assert metrics["pixel_acc"] == pytest.approx(summary["val/pixel_acc"], abs=1e-6)
    assert metrics["images"] == 12 and metrics["images_per_sec"] > 0
    assert list(metrics["per_class_iou"]) == CLASSES
    for name, iou in summary["per_class_iou"].items():
        assert metrics["per_class_iou"][name] == pytest.approx(iou, abs=1e-6)
    with (tmp_path / "eval" / "per_class_iou.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["class"] for r in rows] == CLASSES
    assert sum(int(r["gt_pixels"]) for r in rows) > 0
    with Image.open(tmp_path / "eval" / "confusion_matrix.png") as picture:
        assert picture.format == "PNG" and min(picture.size) >= 300


@pytest.mark.slow
def test_paper_settings_and_the_table(trained_run, tmp_path):
    out = tmp_path / "paper"
    result = run_eval(out, trained_run / "checkpoints" / "best.ckpt", "eval.output_stride=8",
                      "eval.scales=[0.75,1.0,1.25]", "eval.flip=true")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= metrics.keys()
    assert (metrics["output_stride"], metrics["train_output_stride"]) == (8, 16)
    assert metrics["scales"] == [0.75, 1.0, 1.25] and metrics["flip"] is True
    table = result.stdout.splitlines()
    assert table[0].split() == ["class", "IoU", "gt", "pixels", "pred", "pixels"]
    assert [line.split()[0] for line in table[1:6]] == CLASSES
    assert table[6].startswith("mIoU") and f"{100 * metrics['mIoU']:.2f}%" in table[6]


@pytest.mark.slow
def test_slide_with_a_covering_window_equals_whole(trained_run, tmp_path):
    checkpoint = trained_run / "checkpoints" / "best.ckpt"
    results = {}
    for mode in ("whole", "slide"):
        result = run_eval(tmp_path / mode, checkpoint, f"eval.mode={mode}", "eval.window=[256,256]")
        assert result.returncode == 0, result.stderr[-3000:]
        results[mode] = json.loads((tmp_path / mode / "metrics.json").read_text())["mIoU"]
    assert results["slide"] == pytest.approx(results["whole"], abs=1e-6)


@pytest.mark.parametrize("args, message", [
    (["eval.mode=tiles"], "error: eval.mode=tiles is not allowed; allowed: whole, slide"),
    (["eval.window=[64,64]", "eval.stride=[80,40]"], "error: eval.stride=[80, 40] is not allowed; allowed: at most "
                                                     "eval.window=[64, 64], or windows leave gaps"),
    (["eval=best"], "error: eval=best is not allowed; allowed: default, paper"),
    (["eval.scale=[1.0]"], "error: eval.scale is not a config key (did you mean eval.scales?)"),
])
def test_bad_settings_are_one_line(trained_run, tmp_path, args, message):
    result = run_eval(tmp_path / "bad", trained_run / "checkpoints" / "best.ckpt", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "bad" / "metrics.json").exists()


@pytest.mark.slow
def test_data_root_and_split_reach_the_dataset(trained_run, small_synthetic, tmp_path, capsys, monkeypatch):
    """The checkpoint's config is resolved: its dataset holds the training-time root itself. An
    override of data.root must still be what is read: two copies with different val lists."""
    source = small_synthetic / "synthetic_voc"
    val = (source / "ImageSets" / "Segmentation" / "val.txt").read_text().split()
    counts = {}
    for name, count in (("four", 4), ("seven", 7)):
        copy = shutil.copytree(source, tmp_path / name)
        (copy / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(val[:count]) + "\n")
        out = tmp_path / f"eval_{name}"
        code, stderr = run_entry("eval.py", f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}",
                                 f"data.root={copy}", f"hydra.run.dir={out}", capsys=capsys, monkeypatch=monkeypatch)
        assert code == 0, stderr[-3000:]
        metrics = json.loads((out / "metrics.json").read_text())
        assert (metrics["data_root"], metrics["split"]) == (str(copy), "val")
        counts[name] = metrics["images"]
    assert counts == {"four": 4, "seven": 7}
    out = tmp_path / "eval_train"
    code, stderr = run_entry("eval.py", f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}",
                             f"data.root={tmp_path / 'four'}", "data.split=train", f"hydra.run.dir={out}",
                             capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "train" and metrics["images"] == len(
        (source / "ImageSets" / "Segmentation" / "train.txt").read_text().split())


def test_a_missing_data_root_is_one_line(trained_run, tmp_path, capsys, monkeypatch):
    code, stderr = run_entry("eval.py", f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}",
                             f"data.root={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path / 'eval'}",
                             capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"data.root={tmp_path / 'nowhere'} does not exist or is not a folder")
    assert not (tmp_path / "nowhere").exists()  # nothing was generated there either


@pytest.fixture(scope="module")
def voc_checkpoint(tmp_path_factory):
    """The tiny network after one step on the VOC samples: 21 classes and VOC's void borders."""
    run_dir = tmp_path_factory.mktemp("voc") / "run"
    result = run_train(run_dir, "data=voc", f"data.root={VOC_SAMPLES}", *TINY_NET, "data.crop_size=193",
                       "data.batch_size=4", "data.num_workers=0", "logger=none", "trainer.max_steps=1",
                       "trainer.limit_val_batches=1")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.mark.slow
@pytest.mark.skipif(not VOC_SAMPLES.is_dir(), reason="../shared/data/voc2012_samples not present")
def test_trimap_per_image_and_interval_on_the_voc_samples(voc_checkpoint, tmp_path):
    out = tmp_path / "eval"
    result = run_eval(out, voc_checkpoint, "data.split=trainval", "eval.trimap.widths=[2,4,8,16,40]",
                      "eval.num_worst=3")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["trimap"]) == ["2", "4", "8", "16", "40"] and metrics["trimap_boundary"] == "void"
    assert (out / "trimap.png").stat().st_size > 5_000
    with (out / "trimap.csv").open() as handle:
        assert [int(r["width"]) for r in csv.DictReader(handle)] == [2, 4, 8, 16, 40]
    with (out / "per_image.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == metrics["images"] == 9
    worst = [w["mIoU"] for w in metrics["worst"]]  # the lowest per-image scores, lowest first
    assert worst == sorted(float(r["mIoU"]) for r in rows)[:3]
    with Image.open(out / "worst.png") as gallery:
        assert gallery.height == round(2.6 * 3 * 80)  # three rows of image | truth | prediction | errors
    low, high = metrics["mIoU_ci95"]
    assert low <= metrics["mIoU"] <= high
    assert 0 <= metrics["boundary_iou"]["mean"] <= 1

    wide = run_eval(tmp_path / "wide", voc_checkpoint, "data.split=trainval", "eval.trimap.widths=[1000]",
                    "eval.bootstrap=0", "eval.flip=true")
    assert wide.returncode == 0, wide.stderr[-3000:]
    whole = json.loads((tmp_path / "wide" / "metrics.json").read_text())
    assert whole["trimap"]["1000"]["mIoU"] == pytest.approx(whole["mIoU"], abs=1e-12)  # the band covers every pixel
    assert "mIoU_ci95" not in whole

    plotted = run_script("tools/trimap_plot.py", str(out), str(tmp_path / "wide"), "--output",
                         str(tmp_path / "both.png"))
    assert plotted.returncode == 0 and plotted.stdout.strip() == f"wrote {tmp_path / 'both.png'} (2 curves)"

    compared = run_script("tools/compare.py", str(out), str(tmp_path / "wide"))  # flip on against off
    assert compared.returncode == 0, compared.stderr
    last = compared.stdout.strip().splitlines()[-1]
    assert last.startswith(f"mIoU A {100 * metrics['mIoU']:.2f}%  B {100 * whole['mIoU']:.2f}%  B - A ")
    assert "95% paired bootstrap interval over 9 images: " in last
    low, high = (float(x) for x in last.split("images: ")[1].split(" .. "))
    assert low <= 100 * (whole["mIoU"] - metrics["mIoU"]) <= high


def eval_fast_and_plain(checkpoint, tmp_path, capsys, monkeypatch, *args) -> tuple[dict, dict]:
    results = []
    for fast in ("true", "false"):
        out = tmp_path / f"fast_{fast}"
        code, stderr = run_entry("eval.py", f"ckpt_path={checkpoint}", f"eval.fast={fast}", "eval.bootstrap=0",
                                 "eval.num_worst=0", *args, f"hydra.run.dir={out}", capsys=capsys,
                                 monkeypatch=monkeypatch)
        assert code == 0, stderr[-3000:]
        results.append(json.loads((out / "metrics.json").read_text()))
    return results[0], results[1]


def assert_same_metrics(fast: dict, plain: dict) -> None:
    assert fast["fast"] is True and plain["fast"] is False and fast["precision"] == plain["precision"] == "fp32"
    assert fast["mIoU"] == pytest.approx(plain["mIoU"], abs=1e-6)
    assert fast["pixel_acc"] == pytest.approx(plain["pixel_acc"], abs=1e-6)
    for name, iou in plain["per_class_iou"].items():
        assert (fast["per_class_iou"][name] is None) == (iou is None)
        if iou is not None:
            assert fast["per_class_iou"][name] == pytest.approx(iou, abs=1e-6)


@pytest.mark.slow
def test_folded_channels_last_inference_gives_the_same_metrics(trained_run, tmp_path, capsys, monkeypatch):
    checkpoint = trained_run / "checkpoints" / "best.ckpt"
    fast, plain = eval_fast_and_plain(checkpoint, tmp_path, capsys, monkeypatch, "eval.flip=true")
    assert_same_metrics(fast, plain)
    out = tmp_path / "auto"  # bf16 where this CPU has it natively, else fp32: recorded as what ran
    code, stderr = run_entry("eval.py", f"ckpt_path={checkpoint}", "eval.precision=auto", "eval.flip=true",
                             "eval.bootstrap=0", "eval.num_worst=0", f"hydra.run.dir={out}", capsys=capsys,
                             monkeypatch=monkeypatch)
    assert code == 0, stderr[-3000:]
    auto = json.loads((out / "metrics.json").read_text())
    assert auto["precision"] == ("bf16" if native_bf16(torch.device("cpu"))[0] else "fp32")
    assert auto["mIoU"] == pytest.approx(plain["mIoU"], abs=0.02)  # bf16 logits move few argmaxes


@pytest.mark.slow
@pytest.mark.skipif(not VOC_SAMPLES.is_dir(), reason="../shared/data/voc2012_samples not present")
def test_folded_channels_last_inference_gives_the_same_metrics_on_the_voc_samples(voc_checkpoint, tmp_path, capsys,
                                                                                  monkeypatch):
    assert_same_metrics(*eval_fast_and_plain(voc_checkpoint, tmp_path, capsys, monkeypatch, "data.split=trainval",
                                             "eval.scales=[0.75,1.0,1.25]"))


@pytest.mark.parametrize("args, message", [
    ((), "ckpt_path is required; give it on the command line: ckpt_path=VALUE"),
    (("ckpt_path=/no/such.ckpt",), "ckpt_path=/no/such.ckpt does not exist"),
    (("ckpt_path=/no/such.ckpt", "os=12"), "os=12 is not allowed; allowed: null, 8, 16, 32"),
    (("ckpt_path=/no/such.ckpt", "eval.flip=maybe"), "eval.flip=maybe is not allowed"),
])
def test_a_refusal_is_said_before_a_run_directory_is_made(args, message, tmp_path):
    result = run_train(tmp_path / "eval", *args, script="eval.py")
    assert_one_line_error(result.returncode, result.stderr, message)
    assert not (tmp_path / "eval").exists()
