"""W&B in offline mode, read back from the run's own transaction log."""

import json
import subprocess
import sys
from pathlib import Path

from ..conftest import SMALL, run_train


def test_wandb_offline_run_records_metrics_and_config(tmp_path, small_synthetic):
    run_dir = tmp_path / "run"
    args = [a for a in SMALL if not a.startswith("logger=")]
    result = run_train(run_dir, *args, "logger=wandb", "trainer.max_epochs=1", "trainer.log_every_n_steps=1",
                       data_dir=small_synthetic)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "W&B: offline (no credentials configured); upload later with `wandb sync" in result.stdout + result.stderr
    wandb_cli = Path(sys.executable).parent / "wandb"
    inspect = subprocess.run([str(wandb_cli), "leet", "inspect", "--summary", "--json", str(run_dir / "wandb")],
                             capture_output=True, text=True, timeout=120)
    assert inspect.returncode == 0, inspect.stderr
    summary = json.loads(inspect.stdout)
    text = json.dumps(summary)
    for key in ("val/mIoU", "val/mIoU_best", "train/loss", "lr"):
        assert f'"{key}"' in text, key
    assert '"model.backbone.name"' in text and "resnet" in text
