"""tools/bench.py times the framework's training step against a bare loop over the same module."""

import json

import pytest
import torch

from deeplab.builders.checkpoint import load_checkpoint, model_from_checkpoint

from ..conftest import SMALL, assert_one_line_error, run_entry, run_script, run_train


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
