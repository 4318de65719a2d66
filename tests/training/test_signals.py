"""Signals a cluster or a user sends a running job: Ctrl-C (SIGINT) and SLURM's SIGUSR1."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ..conftest import ROOT, SMALL, run_train

pytestmark = pytest.mark.slow  # signals need real processes: in CI's slow suite (make test-slow)

RUN = (*SMALL, "data.num_workers=2", "trainer.max_epochs=2", "callbacks.last_checkpoint.every_n_train_steps=2")


def start_train(run_dir: Path, data_dir: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", f"paths.data_dir={data_dir}",
               *RUN, *args]
    # its own process group, as a shell job: a terminal's Ctrl-C reaches the workers too
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_ctrl_c_stops_cleanly_with_a_resumable_checkpoint(tmp_path, small_synthetic):
    run_dir = tmp_path / "run"
    process = start_train(run_dir, small_synthetic)
    wait_for(run_dir / "checkpoints" / "last.ckpt", process)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert process.returncode == 130, stderr[-3000:]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-3000:]
    step = int(errors[0].split("after step ")[1].split(";")[0])
    assert errors[0] == (f"error: stopped by Ctrl-C after step {step}; {run_dir}/checkpoints/last.ckpt is "
                         f"written; resume with ckpt_path={run_dir}")
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == step < 12  # stopped part-way through the 12 steps

    resumed = run_train(run_dir, f"ckpt_path={run_dir}", data_dir=small_synthetic)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 12


def test_slurm_sigusr1_saves_and_requeues(tmp_path, small_synthetic):
    """Lightning's SLURM support: SIGUSR1 saves hpc_ckpt_1.ckpt in the run directory and asks
    `scontrol requeue JOB`; the requeued job (same command, same run directory) resumes from it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    requeued = tmp_path / "requeued"
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" > {requeued}\n")
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "deeplab", "SLURM_JOB_ID": "4242", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "node1",
             "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run_dir = tmp_path / "run"
    process = start_train(run_dir, small_synthetic, env=slurm)
    wait_for(run_dir / "checkpoints" / "last.ckpt", process)
    os.kill(process.pid, signal.SIGUSR1)
    wait_for(requeued, process)
    process.kill()  # SLURM ends the job once it is requeued
    process.communicate(timeout=60)
    assert requeued.read_text().split() == ["requeue", "4242"]
    hpc = run_dir / "hpc_ckpt_1.ckpt"
    saved = torch.load(hpc, map_location="cpu", weights_only=True)  # whole and safe to load
    assert 0 < saved["global_step"] < 12

    again = subprocess.run([sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}",
                            f"paths.data_dir={small_synthetic}", *RUN], cwd=ROOT, env={**os.environ, **slurm},
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Restored all states from the checkpoint at {hpc}" in again.stdout + again.stderr
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 12


def test_a_requeued_slurm_job_resumes_from_last_ckpt(tmp_path, small_synthetic):
    """Preempted under submitit (no SIGUSR1 save): the job is killed, SLURM starts the same command
    again with SLURM_RESTART_COUNT=1, and it continues from its run directory's last.ckpt."""
    run_dir, marker = tmp_path / "run", tmp_path / "killed"
    killed = run_train(run_dir, *RUN, "+callbacks.kill._target_=tests.training.kill.KillAt",
                       "+callbacks.kill.step=5", f"+callbacks.kill.marker={marker}", data_dir=small_synthetic,
                       process=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    slurm = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "deeplab", "SLURM_JOB_ID": "4243", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "node1", "SLURM_RESTART_COUNT": "1"}
    again = subprocess.run([sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}",
                            f"paths.data_dir={small_synthetic}", *RUN, "+callbacks.kill._target_=tests.training.kill."
                            "KillAt", "+callbacks.kill.step=5", f"+callbacks.kill.marker={marker}"], cwd=ROOT,
                           env={**os.environ, **slurm}, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"SLURM requeue 1: resuming from {run_dir}/checkpoints/last.ckpt" in again.stdout
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 12


def test_ctrl_c_during_a_validation_stops_there(tmp_path, small_synthetic):
    """Ctrl-C in the middle of a validation stops after the running batch: no further validation
    batch, no training step, no off-schedule line in validation.jsonl; the last.ckpt written
    before that validation is kept and a resume reaches the uninterrupted run's end."""
    run_dir = tmp_path / "run"
    stopped = run_train(run_dir, *RUN, "+callbacks.ctrl_c._target_=tests.training.kill.CtrlCInValidation",
                        f"+callbacks.ctrl_c.marker={tmp_path / 'sent'}", data_dir=small_synthetic, process=True)
    errors = [line for line in stopped.stderr.splitlines() if line.startswith("error:")]
    assert stopped.returncode == 130 and "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
    # 48 images, batches of 8: the first validation follows step 6; last.ckpt was last written at step 6's
    # every_n_train_steps=2 boundary only if no validation followed, so it holds step 4
    assert errors == [f"error: stopped by Ctrl-C during the validation after step 6; {run_dir}/checkpoints/"
                      f"last.ckpt (step 4) is kept; resume with ckpt_path={run_dir}"], stopped.stderr[-3000:]
    assert not (run_dir / "validation.jsonl").exists()  # the interrupted validation wrote no line
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)[
        "global_step"] == 4

    resumed = run_train(run_dir, f"ckpt_path={run_dir}", data_dir=small_synthetic)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    lines = [json.loads(line) for line in (run_dir / "validation.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [6, 12]  # each validation once, on schedule
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 12
