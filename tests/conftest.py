import logging
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
SHARED = ROOT.parent / "shared"
VOC_SAMPLES = SHARED / "data" / "voc2012_samples"


def compose_config(*overrides: str):
    """The composed train config, as train.py would see it (interpolations left unresolved)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def run_train(run_dir: Path, *args: str, data_dir: Path | None = None, timeout: int = 600,
              script: str = "train.py") -> subprocess.CompletedProcess:
    """Runs an entry point as a user would, with its outputs under run_dir and W&B kept offline."""
    command = [sys.executable, str(ROOT / script), f"hydra.run.dir={run_dir}", f"paths.log_dir={run_dir.parent}"]
    if data_dir is not None:
        command.append(f"paths.data_dir={data_dir}")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "NO_ALBUMENTATIONS_UPDATE": "1"}
    env.pop("WANDB_API_KEY", None)
    return subprocess.run(command + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def run_entry(script: str, *args: str, capsys, monkeypatch, stdout: bool = False) -> tuple:
    """Runs `python SCRIPT ARGS` in this process; returns (exit status, stderr), and stdout too
    when asked."""
    monkeypatch.setattr(sys, "argv", [str(ROOT / script), *args])
    monkeypatch.setenv("WANDB_MODE", "offline")
    root = logging.getLogger()
    for handler in root.handlers[:]:  # handlers an earlier run here gave a now-closed captured stream
        if getattr(getattr(handler, "stream", None), "closed", False):
            root.removeHandler(handler)
    capsys.readouterr()
    try:
        runpy.run_path(str(ROOT / script), run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    captured = capsys.readouterr()
    return (code, captured.err, captured.out) if stdout else (code, captured.err)


def assert_one_line_error(code: int, stderr: str, message: str) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code != 0, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    assert len(errors) == 1, stderr[-2000:]
    assert message in errors[0], errors[0]


@pytest.fixture(scope="session")
def small_synthetic(tmp_path_factory) -> Path:
    """A small synthetic set shared by the training tests (the overrides below select it)."""
    return tmp_path_factory.mktemp("data")


SMALL = ("data.prepare.num_train=48", "data.prepare.num_val=12", "data.num_workers=0", "logger=none")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, small_synthetic) -> Path:
    """One short training run (one epoch on 48 images) whose checkpoints the eval, predict and
    export tests read."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    result = run_train(run_dir, *SMALL, "trainer.max_epochs=1", data_dir=small_synthetic)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir
