import contextlib
import io
import logging
import os
import runpy
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "src" / "deeplab" / "conf"
SHARED = ROOT.parent / "shared"
VOC_SAMPLES = SHARED / "data" / "voc2012_samples"


def group_options(conf_dir: Path, group: str) -> list[str]:
    """The options of a config group: its folder's YAML files."""
    return sorted(p.stem for p in (Path(conf_dir) / group).glob("*.yaml"))


def compose_config(*overrides: str):
    """The composed train config, as train.py would see it (interpolations left unresolved)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@dataclass
class Finished:
    """What a finished command left: its exit status and what it wrote (CompletedProcess's fields)."""

    returncode: int
    stdout: str
    stderr: str


def _drop_closed_handlers(logger: logging.Logger) -> None:
    """Handlers an earlier in-process run gave a captured stream that pytest has closed since."""
    for handler in logger.handlers[:]:
        if getattr(getattr(handler, "stream", None), "closed", False):
            logger.removeHandler(handler)


def _user_env(env: dict | None) -> dict:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "NO_ALBUMENTATIONS_UPDATE": "1",
           **(env or {})}
    env.pop("WANDB_API_KEY", None)
    return env


def run_script(script: str, *args: str, env: dict | None = None) -> Finished:
    """`python SCRIPT ARGS` run in this process, as its own process would run it: same argv, same
    exit status (an uncaught exception is status 1 with its traceback on stderr), its output
    captured; the process-wide state it changes (environment, working directory, logging, Hydra's
    singletons, torch's determinism switch) is put back afterwards. For what needs a real process
    boundary (signals, kills, DDP) use run_process."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv[:], os.getcwd()
    root = logging.getLogger()
    _drop_closed_handlers(root)
    saved_handlers, saved_level = root.handlers[:], root.level
    deterministic = torch.are_deterministic_algorithms_enabled()
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(_user_env(env))
    sys.argv = [str(ROOT / script), *args]
    os.chdir(ROOT)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(str(ROOT / script), run_name="__main__")
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
                if isinstance(stop.code, str):
                    print(stop.code, file=sys.stderr)
            except Exception:  # noqa: BLE001  (what the interpreter does with an uncaught exception)
                traceback.print_exc()
                code = 1
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        for handler in root.handlers[:]:
            if handler not in saved_handlers:  # Hydra's job logging: the run's log file and console
                handler.close()
                root.removeHandler(handler)
        root.setLevel(saved_level)
        torch.use_deterministic_algorithms(deterministic)
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()
    return Finished(code, out.getvalue(), err.getvalue())


def run_process(script: str, *args: str, env: dict | None = None, timeout: int = 600) -> Finished:
    """`python SCRIPT ARGS` in a new process: for signals, kills, DDP and timings of a whole command."""
    result = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT, env=_user_env(env),
                            capture_output=True, text=True, timeout=timeout)
    return Finished(result.returncode, result.stdout, result.stderr)


def run_train(run_dir: Path, *args: str, data_dir: Path | None = None, script: str = "train.py",
              process: bool = False, timeout: int = 600) -> Finished:
    """Runs an entry point as a user would, with its outputs under run_dir and W&B kept offline;
    in this process unless `process` (see run_script)."""
    command = [f"hydra.run.dir={run_dir}", f"paths.log_dir={run_dir.parent}"]
    if data_dir is not None:
        command.append(f"paths.data_dir={data_dir}")
    if process:
        return run_process(script, *command, *args, timeout=timeout)
    return run_script(script, *command, *args)


def run_entry(script: str, *args: str, capsys, monkeypatch, stdout: bool = False) -> tuple:
    """Runs `python SCRIPT ARGS` in this process; returns (exit status, stderr), and stdout too
    when asked."""
    monkeypatch.setattr(sys, "argv", [str(ROOT / script), *args])
    monkeypatch.setenv("WANDB_MODE", "offline")
    _drop_closed_handlers(logging.getLogger())
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


# fp32 whatever the CPU: the synthetic recipe's trainer.precision=auto would pick bf16 on some machines only
SMALL = ("data.prepare.num_train=48", "data.prepare.num_val=12", "data.num_workers=0", "logger=none",
         "trainer.precision=32-true")
# A network of 0.4 M parameters (timm's test_resnet, 16-channel head), for tests about what a run
# does rather than what it learns: a step and a checkpoint take milliseconds.
TINY_NET = ("model.backbone.name=tu-test_resnet", "model.aspp.channels=16", "model.decoder.channels=16",
            "model.decoder.low_level_channels=8")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, small_synthetic) -> Path:
    """One short training run (one epoch on 48 images, the tiny network) whose checkpoints the
    eval, predict and export tests read. Trained with bf16 autocast (emulated where the CPU has no
    bf16), so that eval.py's fp32 result equals the validation it logged only if validation ran in fp32."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    result = run_train(run_dir, *SMALL, *TINY_NET, "trainer.max_epochs=1", "trainer.precision=bf16-mixed",
                       data_dir=small_synthetic)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir
