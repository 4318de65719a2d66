"""The GPU self-check: its one line without CUDA, and its whole plan on the CPU at tiny sizes."""

import json
import subprocess

import pytest
import torch

from deeplab.tools.gpu_check import MODES, main

from ..conftest import ROOT


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the real check would run")
def test_without_cuda_make_gpu_check_prints_one_line_and_exits_0(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines() == ["gpu_check: no CUDA device is visible, nothing to check "
                                        "(tools/gpu_check.py --dry-run runs the same checks on the CPU)"]
    made = subprocess.run(["make", "-s", "gpu-check"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    assert made.stdout.strip().splitlines()[-1].startswith("gpu_check: no CUDA device is visible")


@pytest.mark.slow
def test_the_dry_run_passes_every_check_on_the_cpu(tmp_path, capsys, monkeypatch):
    """ResNet-101 and Xception-65 x OS16/OS8 x fp32, bf16 + channels_last, + compile through the
    LightningModule (the loss falls), bf16 logits against fp32, OS8 multi-scale + flip inference,
    and DDP over gloo against eval.py: all on the CPU. Run from a folder outside the checkout with
    a relative --out, as `deeplab-gpu-check --dry-run` is run there (its DDP subprocesses run in
    the checkout)."""
    monkeypatch.chdir(tmp_path)
    assert main(["--dry-run", "--out", "report"]) == 0, capsys.readouterr().out[-3000:]
    result = json.loads((tmp_path / "report" / "gpu_check.json").read_text())
    names = [c["name"] for c in result["checks"]]
    assert len([n for n in names if n.startswith("train ")]) == 2 * 2 * len(MODES)
    assert {"bf16 logits resnet101", "bf16 logits xception65", "ddp 2 processes"} <= set(names)
    assert result["failed"] == [] and all(c["ok"] for c in result["checks"])
    for check in result["checks"]:
        if check["name"].startswith("train "):
            assert check["last_loss"] < check["first_loss"] and check["images_per_sec"] > 0
    ddp = next(c for c in result["checks"] if c["name"] == "ddp 2 processes")
    assert ddp["val_miou"] == pytest.approx(ddp["eval_miou"], abs=1e-6)
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"gpu_check: all {len(names)} checks passed"
