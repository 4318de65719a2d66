"""tools/bench.py times the framework's training step against a bare loop over the same module."""

import json

import pytest
import torch

from deeplab.builders.checkpoint import load_checkpoint, model_from_checkpoint

from ..conftest import SMALL, assert_one_line_error, run_entry, run_process, run_script, run_train


@pytest.mark.slow
def test_bench_writes_the_figures(tmp_path, small_synthetic):
    output = tmp_path / "bench.json"
    args = [*SMALL, f"paths.data_dir={small_synthetic}", "data.batch_size=2", "bench.input_size=[65,65]",
            "bench.warmup=1", "bench.iterations=3", "bench.repeats=2", "bench.loader_batches=2",
            f"bench.output={output}"]
    result = run_script("tools/bench.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(output.read_text())
    for key in ("train_images_per_sec", "bare_train_images_per_sec", "overhead_ratio", "infer_images_per_sec",
                "peak_memory_mb", "loader_images_per_sec"):
        assert figures[key] > 0, key
    assert figures["steps_timed"] == 6 and figures["device"] == "cpu"
    assert abs(figures["overhead_ratio"] - figures["train_ms_per_step"] / figures["bare_train_ms_per_step"]) < 1e-9
    assert "overhead framework / bare loop:" in result.stdout and "train (bare loop)" in result.stdout


@pytest.mark.slow
def test_channels_last_training_keeps_checkpoints_compatible(tmp_path, small_synthetic):
    run_dir = tmp_path / "run"
    result = run_train(run_dir, *SMALL, "model.channels_last=true", "trainer.max_steps=2", data_dir=small_synthetic)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    stem = load_checkpoint(checkpoint)["state_dict"]["model.encoder.conv1.weight"]  # a 7x7 conv
    assert stem.is_contiguous(memory_format=torch.channels_last) and not stem.is_contiguous()  # trained in NHWC
    model_from_checkpoint(checkpoint)  # and loads strictly into a plain model: the keys are unchanged


@pytest.mark.slow
def test_bench_against_smp_with_the_same_encoder(tmp_path, small_synthetic, capsys, monkeypatch):
    output = tmp_path / "bench.json"
    code, stderr, stdout = run_entry("tools/bench.py", *SMALL, f"paths.data_dir={small_synthetic}",
                                     "model.backbone.name=tu-test_resnet", "data.batch_size=2",
                                     "bench.input_size=[65,65]", "bench.warmup=1", "bench.iterations=2",
                                     "bench.repeats=1", "bench.loader_batches=0", "bench.compare=smp",
                                     f"bench.output={output}", capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 0, stderr[-3000:]
    figures = json.loads(output.read_text())
    for key in ("smp_train_ms_per_step", "smp_infer_ms_per_batch"):
        assert figures[key] > 0, key
    assert figures["train_time_ratio_vs_smp"] == figures["bare_train_ms_per_step"] / figures["smp_train_ms_per_step"]
    assert figures["infer_time_ratio_vs_smp"] == figures["infer_ms_per_batch"] / figures["smp_infer_ms_per_batch"]
    assert "time against smp's DeepLabV3Plus (at 64x64): training" in stdout and figures["smp_input_size"] == [64, 64]
    for bad, message in (("bench.compare=timm", "bench.compare=timm is not allowed; allowed: null, smp"),
                         ("os=32", "bench.compare=smp needs os=8 or os=16 (smp's DeepLabV3Plus has no output "
                                     "stride 32)")):
        code, stderr = run_entry("tools/bench.py", *SMALL, "bench.compare=smp", bad, "bench.loader_batches=0",
                                 f"bench.output={tmp_path / 'no.json'}", capsys=capsys, monkeypatch=monkeypatch)
        assert_one_line_error(code, stderr, message)
    assert not (tmp_path / "no.json").exists()


@pytest.mark.slow
def test_backends_side_by_side_with_their_accuracy(trained_run, small_synthetic, tmp_path):
    """bench.backends: every backend timed on one input in turns, each one's mIoU on the val split;
    PyTorch's is eval.py's, the FP32 graphs' equal it."""
    output = tmp_path / "bench.json"
    backends = ["pytorch", "onnx", "onnx-int8", "openvino", "openvino-int8", "torchscript"]
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    result = run_process("tools/bench.py", *SMALL, f"paths.data_dir={small_synthetic}", f"ckpt_path={checkpoint}",
                        f"bench.backends=[{','.join(backends)}]", "bench.input_size=[65,65]", "bench.iterations=2",
                        "bench.repeats=1", "bench.warmup=1", "bench.calibration_images=4", "bench.accuracy=true",
                        f"bench.output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(output.read_text())
    assert list(report["backends"]) == backends and report["batch_size"] == 1 and report["weights"] == str(checkpoint)
    for name, entry in report["backends"].items():
        assert entry["images_per_sec"] > 0 and entry["accuracy_images"] == 12, name
        assert entry["images_per_sec"] == pytest.approx(1000 / entry["ms_per_batch"])
    assert report["backends"]["pytorch"]["speed_vs_pytorch"] == 1.0
    assert report["backends"]["onnx-int8"]["calibration_images"] == 4
    evaluated = run_process("eval.py", f"ckpt_path={checkpoint}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    miou = json.loads((tmp_path / "eval" / "metrics.json").read_text())["mIoU"]
    assert report["backends"]["pytorch"]["mIoU"] == pytest.approx(miou, abs=1e-6)
    for name in ("onnx", "openvino", "torchscript"):
        assert report["backends"][name]["mIoU"] == pytest.approx(miou, abs=1e-4), name
    assert "onnx-int8" in result.stdout and "vs pytorch" in result.stdout


def test_an_unknown_backend_is_one_line(capsys, monkeypatch, tmp_path):
    code, stderr = run_entry("tools/bench.py", *SMALL, "bench.backends=[pytorch,tensorrt]",
                             f"bench.output={tmp_path / 'b.json'}", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "bench.backends=[pytorch,tensorrt] is not allowed; allowed: a list of "
                                        "distinct names from pytorch, onnx, onnx-int8, openvino, openvino-int8, "
                                        "torchscript")
