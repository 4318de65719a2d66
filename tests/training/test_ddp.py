"""DDP on 2 CPU processes (gloo): one run dir, one W&B run, one summary; metrics reduced exactly."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deeplab.data.synthetic import make_synthetic_voc

from ..conftest import SMALL, run_train

pytestmark = pytest.mark.slow  # two gloo processes each: in CI's slow suite (make test-slow)

HERE = Path(__file__).resolve().parent


def test_ddp_training_is_one_run(tmp_path, small_synthetic):
    run_dir = tmp_path / "logs" / "run"
    args = [a for a in SMALL if not a.startswith("logger=")]
    result = run_train(run_dir, *args, "logger=wandb", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                       "trainer.sync_batchnorm=false",
                       "trainer.max_epochs=1", "data.prepare.num_train=32", data_dir=small_synthetic, process=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["run"]  # no second run dir from process 1
    assert len(list(run_dir.glob("wandb/offline-run-*"))) == 1
    assert list(tmp_path.rglob("summary.json")) == [run_dir / "summary.json"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 2  # 32 images, batches of 8 on each of 2 processes
    assert summary["val/mIoU"] is not None


@pytest.mark.parametrize("num_val", [5, 6])  # odd: one process gets one image more
def test_validation_on_two_processes_equals_one(trained_run, tmp_path, num_val):
    root = make_synthetic_voc(tmp_path / "synthetic_voc", num_train=2, num_val=num_val, seed=7)
    outputs = []
    for devices in (1, 2):
        result = subprocess.run([sys.executable, str(HERE / "ddp_validate.py"), str(trained_run / "checkpoints" /
                                 "best.ckpt"), str(root), str(devices)], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    one, two = outputs
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one["images"] == two["images"] == num_val  # every image once, none twice
    assert two["val/mIoU"] == pytest.approx(one["val/mIoU"], abs=1e-6)
    assert two["val/pixel_acc"] == pytest.approx(one["val/pixel_acc"], abs=1e-6)
