"""Exact resume: a run killed with SIGKILL and resumed ends where an uninterrupted one ends."""

import json
import random
import signal
import subprocess
import sys

import pytest
import torch

from ..conftest import run_train

# 64 images in batches of 8: 8 steps an epoch, 2 epochs; last.ckpt every 3 steps, so a kill
# usually falls between saves and the resumed run redoes steps, with dropout and augmentation.
RUN = ("data.prepare.num_train=64", "data.prepare.num_val=6", "data.num_workers=2", "logger=csv",
       "trainer.max_epochs=2", "trainer.deterministic=true", "callbacks.last_checkpoint.every_n_train_steps=3")
KILL_STEPS = sorted(random.Random(9).sample(range(2, 16), 3))  # random, and the same on every run


def final_state(run_dir):
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    return checkpoint, summary


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, small_synthetic):
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    result = run_train(run_dir, *RUN, data_dir=small_synthetic)
    assert result.returncode == 0, result.stderr[-3000:]
    return final_state(run_dir)


@pytest.mark.parametrize("kill_step", KILL_STEPS)
def test_sigkill_then_resume_is_bit_identical(tmp_path, small_synthetic, uninterrupted, kill_step):
    run_dir, marker = tmp_path / "run", tmp_path / "killed"
    killed = run_train(run_dir, *RUN, "+callbacks.kill._target_=tests.training.kill.KillAt",
                       f"+callbacks.kill.step={kill_step}", f"+callbacks.kill.marker={marker}",
                       data_dir=small_synthetic)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] <= kill_step  # the run did stop part-way, at or behind the kill

    # As a user resumes: the run directory alone; its overrides, W&B run and folder are reused.
    resumed = run_train(run_dir, f"ckpt_path={run_dir}", data_dir=small_synthetic)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, expected_summary = uninterrupted
    got, summary = final_state(run_dir)
    assert got["global_step"] == expected["global_step"] and got["epoch"] == expected["epoch"] == 1
    for key, tensor in expected["state_dict"].items():
        assert torch.equal(got["state_dict"][key], tensor), f"{key} differs after a kill at step {kill_step}"
    assert summary["val/mIoU"] == expected_summary["val/mIoU"]
    assert summary["val/mIoU_best"] == expected_summary["val/mIoU_best"]


KILLED_WHILE_SAVING = """
import os, signal, sys, torch
from deeplab.training.resume import AtomicCheckpointIO

# The new file is written, not yet on disk for sure nor renamed, when the kill comes.
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
AtomicCheckpointIO().save_checkpoint({"global_step": 8, "weights": torch.ones(1 << 20)}, sys.argv[1])
"""


def test_a_kill_during_a_save_leaves_the_previous_checkpoint(tmp_path):
    from deeplab.training.resume import AtomicCheckpointIO

    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"global_step": 7, "weights": torch.zeros(4)}, path)
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, str(path)], capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (tmp_path / ".last.ckpt.partial").stat().st_size > 1 << 20  # the save was under way
    assert torch.load(path, weights_only=True)["global_step"] == 7  # the previous one is whole
