"""W&B in offline mode, read back from the run's own transaction log."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ..conftest import SMALL, TINY_NET, run_train
from ..data.layouts import write_voc


@pytest.mark.slow
def test_wandb_offline_run_records_metrics_and_config(tmp_path, small_synthetic):
    run_dir = tmp_path / "run"
    args = [a for a in SMALL if not a.startswith("logger=")]
    result = run_train(run_dir, *args, *TINY_NET, "logger=wandb", "trainer.max_epochs=1", "trainer.log_every_n_steps=1",
                       "eval.trimap.widths=[2,8]", "dashboard.num_worst=2",
                       data_dir=small_synthetic)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "W&B: offline (no credentials configured); upload later with `wandb sync" in result.stdout + result.stderr
    wandb_cli = Path(sys.executable).parent / "wandb"
    inspect = subprocess.run([str(wandb_cli), "leet", "inspect", "--summary", "--json", str(run_dir / "wandb")],
                             capture_output=True, text=True, timeout=120)
    assert inspect.returncode == 0, inspect.stderr
    summary = json.loads(inspect.stdout)
    text = json.dumps(summary)
    for key in ("val/mIoU", "val/mIoU_best", "train/loss", "lr", "val/trimap/2/mIoU", "val/trimap/8/mIoU",
                "val/trimap_curve_table", "val/worst", "train/aug_preview"):
        assert f'"{key}"' in text, key
    preview = summary["summary"]["train/aug_preview"]  # the first batch: 8 crops of 128, 3 tiles a row
    assert (preview["width"], preview["height"]) == (3 * (2 * 128 + 4) + 2 * 4, 3 * 128 + 2 * 4), preview
    assert '"model.backbone.name"' in text and "resnet" in text
    assert summary["summary"]["val/worst"]["nrows"] == 2  # dashboard.num_worst images, lowest mIoU first
    assert summary["summary"]["deviations"] == []  # the start-up check's list (none for the synthetic set)

    # Resumed for a second epoch, the run logs on into the same W&B run.
    resumed = run_train(run_dir, f"ckpt_path={run_dir}", "trainer.max_epochs=2", data_dir=small_synthetic)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run_id = (run_dir / "wandb_run_id").read_text().strip()
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(f"-{run_id}") for r in runs), runs


@pytest.mark.slow
def test_unreachable_server_falls_back_to_offline(tmp_path):
    """Credentials configured but no server: the run goes on offline and says so."""
    script = (
        "from deeplab.training.loggers import wandb_logger\n"
        f"logger = wandb_logger(save_dir={str(tmp_path)!r}, init_timeout=1)\n"
        "logger.log_metrics({'val/mIoU': 0.5})\n"
        "logger.experiment.finish()\n"
        "print('offline' if logger._offline else 'online')\n"
    )
    env = {**os.environ, "WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_SILENT": "true"}
    env.pop("WANDB_MODE", None)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "W&B: could not start an online run (" in result.stdout
    assert "logging offline instead; upload later with `wandb sync" in result.stdout
    assert result.stdout.strip().endswith("offline")
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_a_failing_job_closes_its_run_as_failed(tmp_path):
    masks = {name: np.zeros((40, 50), np.uint8) for name in ("a", "b", "c", "d")}
    root = write_voc(tmp_path / "VOC2012", {"train": ["a", "b", "c", "d"], "val": ["a"]}, masks)
    (root / "JPEGImages" / "c.jpg").write_bytes(b"\xff\xd8 truncated")  # found at start, unreadable at step 2
    run_dir = tmp_path / "run"
    result = run_train(run_dir, "data=voc", f"data.root={root}", "logger=wandb", "backbone=resnet18",
                       "data.batch_size=2", "data.num_workers=0", "data.crop_size=32", "aug=none")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {root / 'JPEGImages' / 'c.jpg'}: cannot read the image"
    wandb_cli = Path(sys.executable).parent / "wandb"
    inspect = subprocess.run([str(wandb_cli), "leet", "inspect", "--summary", "--json", str(run_dir / "wandb")],
                             capture_output=True, text=True, timeout=120)
    run = json.loads(inspect.stdout)
    assert run["exit_code"] == 1 and run["state"] != "running"
