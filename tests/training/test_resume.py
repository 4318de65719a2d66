"""Exact resume, over every checkpoint a run writes: one uninterrupted run keeps a copy of each
checkpoint it saves (mid-epoch, at an epoch's end, the best one after validation), then a run
resumed from each copy must end with the uninterrupted run's weights, optimizer state and
val/mIoU_best, bit for bit. A SIGKILL test checks the same through a real kill."""

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deeplab.training.resume import AtomicCheckpointIO

from ..conftest import TINY_NET, run_entry, run_train

# 48 images in batches of 4 is 12 batches; limit_train_batches=6 trains half of each epoch's
# order, last.ckpt comes every 4 steps (4, 8 mid-epoch; 6, 12 at epochs' ends) and best.ckpt
# after each validation: every kind of checkpoint, with dropout in ASPP to make the RNG count.
BASE = ("data.prepare.num_train=48", "data.prepare.num_val=6", "data.num_workers=0", "logger=none",
        *TINY_NET, "data.batch_size=4", "data.crop_size=64",
        "trainer.max_epochs=2", "trainer.limit_train_batches=6",
        "trainer.deterministic=true", "callbacks.last_checkpoint.every_n_train_steps=4")
CASES = {
    "epochs": (),
    "workers": ("data.num_workers=2",),
    "staged": ("finetune=staged", "trainer.max_epochs=3"),  # its second stage begins at epoch 2
    "accumulate": ("trainer.accumulate_grad_batches=2", "trainer.limit_train_batches=8",
                   "callbacks.last_checkpoint.every_n_train_steps=3"),
    "val_mid_epoch": ("trainer.val_check_interval=4", "trainer.limit_train_batches=8"),
    # epoch-end checkpoints with no validation before them: Lightning restarts those another way
    "val_every_2_epochs": ("trainer.check_val_every_n_epoch=2", "trainer.max_epochs=3"),
}
FAST = {"epochs"}  # the others run in make test-slow


def keep_every_checkpoint(monkeypatch, archive: Path) -> None:
    """Each checkpoint save also copies the file to archive/NN-<name>, in the order of writing."""
    save = AtomicCheckpointIO.save_checkpoint
    archive.mkdir(parents=True)

    def save_and_keep(self, checkpoint, path, storage_options=None):
        save(self, checkpoint, path, storage_options)
        shutil.copy(path, archive / f"{len(list(archive.iterdir())):02d}-{Path(path).name}")

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", save_and_keep)


def final_state(run_dir: Path) -> tuple[dict, dict]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return checkpoint, json.loads((run_dir / "summary.json").read_text())


def assert_same(got, expected, where: str) -> None:
    """Tensors equal bit for bit, through nested dicts and lists (the optimizer state)."""
    if isinstance(expected, torch.Tensor):
        assert torch.equal(got, expected), where
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys(), where
        for key in expected:
            assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert len(got) == len(expected), where
        for index, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    else:
        assert got == expected, where


def case_params():
    return [pytest.param(name, marks=() if name in FAST else pytest.mark.slow) for name in CASES]


@pytest.mark.slow
@pytest.mark.parametrize("case", case_params())
def test_resume_from_every_checkpoint_is_bit_identical(case, tmp_path, small_synthetic, capsys, monkeypatch):
    run_dir, archive = tmp_path / "run", tmp_path / "archive"
    args = (f"paths.data_dir={small_synthetic}", *BASE, *CASES[case])
    with monkeypatch.context() as patch:
        keep_every_checkpoint(patch, archive)
        code, stderr = run_entry("train.py", *args, f"hydra.run.dir={run_dir}", capsys=capsys,
                                 monkeypatch=monkeypatch)
    assert code == 0, stderr[-3000:]
    expected, expected_summary = final_state(run_dir)
    whole = run_dir.rename(tmp_path / "whole")
    copies = sorted(archive.iterdir())
    assert {p.name.split("-", 1)[1] for p in copies} == {"last.ckpt", "best.ckpt"} and len(copies) >= 5, copies
    steps = [torch.load(p, map_location="cpu", weights_only=True)["global_step"] for p in copies]

    for copy, step in zip(copies, steps, strict=True):
        # As a user resumes: the checkpoint file inside its run directory, whose overrides are reused;
        # the same directory each time, as the checkpoints record it.
        shutil.copytree(whole / ".hydra", run_dir / ".hydra")
        checkpoint = run_dir / "checkpoints" / copy.name.split("-", 1)[1]
        checkpoint.parent.mkdir()
        shutil.copy(copy, checkpoint)
        code, stderr = run_entry("train.py", f"ckpt_path={checkpoint}", capsys=capsys, monkeypatch=monkeypatch)
        assert code == 0, f"{copy.name} (step {step}): {stderr[-3000:]}"
        got, summary = final_state(run_dir)
        where = f"resumed from {copy.name} (step {step})"
        assert {p.name for p in checkpoint.parent.iterdir()} <= {"best.ckpt", "last.ckpt"}, where
        assert (got["global_step"], got["epoch"]) == (expected["global_step"], expected["epoch"]), where
        assert_same(got["state_dict"], expected["state_dict"], f"{where}: state_dict")
        assert_same(got["optimizer_states"], expected["optimizer_states"], f"{where}: optimizer")
        # the last validation's results too: a resume must not skip a validation the run owed
        for key in ("val/mIoU_best", "val/mIoU", "val/pixel_acc", "validations"):
            assert summary[key] == expected_summary[key], f"{where}: {key}"
        shutil.rmtree(run_dir)
    print(f"{case}: resumed from {len(copies)} checkpoints at steps {steps}")


# A real SIGKILL as a step begins, right after the epoch-end save (step 6) and mid-epoch (step 9).
KILL = (*BASE, "data.num_workers=2", "callbacks.last_checkpoint.every_n_train_steps=4")


# Gradient accumulation: 8 batches of 4 are 4 optimizer steps an epoch; last.ckpt every 3 steps
# (3, 6) and at the epochs' ends (4, 8). A kill at step 5 resumes from an epoch's end, at step 7
# from mid-epoch, where the sampler must skip the 12 batches (not 6 steps) already trained on.
KILL_CASES = {"plain": (), "accumulate": ("trainer.accumulate_grad_batches=2", "trainer.limit_train_batches=8",
                                          "callbacks.last_checkpoint.every_n_train_steps=3")}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, small_synthetic):
    """The uninterrupted run of a KILL_CASES case, made once."""
    runs = {}

    def run(case: str):
        if case not in runs:
            run_dir = tmp_path_factory.mktemp("whole") / "run"
            result = run_train(run_dir, *KILL, *KILL_CASES[case], data_dir=small_synthetic)
            assert result.returncode == 0, result.stderr[-3000:]
            runs[case] = final_state(run_dir)
        return runs[case]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("case, kill_step", [("plain", 6), ("plain", 9), ("accumulate", 5), ("accumulate", 7)])
def test_sigkill_then_resume_is_bit_identical(tmp_path, small_synthetic, uninterrupted, case, kill_step):
    run_dir, marker = tmp_path / "run", tmp_path / "killed"
    killed = run_train(run_dir, *KILL, *KILL_CASES[case], "+callbacks.kill._target_=tests.training.kill.KillAt",
                       f"+callbacks.kill.step={kill_step}", f"+callbacks.kill.marker={marker}",
                       data_dir=small_synthetic, process=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] <= kill_step  # the run did stop part-way, at or behind the kill

    resumed = run_train(run_dir, f"ckpt_path={run_dir}", data_dir=small_synthetic)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, expected_summary = uninterrupted(case)
    got, summary = final_state(run_dir)
    assert (got["global_step"], got["epoch"]) == (expected["global_step"], expected["epoch"])
    assert_same(got["state_dict"], expected["state_dict"], f"state_dict after a kill at step {kill_step}")
    assert summary["val/mIoU"] == expected_summary["val/mIoU"]
    assert summary["val/mIoU_best"] == expected_summary["val/mIoU_best"]


KILLED_WHILE_SAVING = """
import os, signal, sys, torch
from deeplab.training.resume import AtomicCheckpointIO

# The new file is written, not yet on disk for sure nor renamed, when the kill comes.
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
AtomicCheckpointIO().save_checkpoint({"global_step": 8, "weights": torch.ones(1 << 20)}, sys.argv[1])
"""


@pytest.mark.slow
def test_a_kill_during_a_save_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"global_step": 7, "weights": torch.zeros(4)}, path)
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, str(path)], capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (tmp_path / ".last.ckpt.partial").stat().st_size > 1 << 20  # the save was under way
    assert torch.load(path, weights_only=True)["global_step"] == 7  # the previous one is whole
