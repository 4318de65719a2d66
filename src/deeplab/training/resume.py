"""What makes a killed run continue as if nothing happened: RNG states in every checkpoint,
checkpoints that a kill cannot half-write, and a stop on a loss that is no longer a number."""

import os
import random
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from deeplab.training.checkpoint import CheckpointError


class StepSeed(Callback):
    """Seeds torch (CUDA too), NumPy and Python before every training batch from (seed, batches
    trained so far, rank), so dropout draws the same masks at the same step in a resumed run as in
    an uninterrupted one, from whichever checkpoint it resumed: restoring saved RNG states instead
    goes wrong wherever something draws between a save and the next step (a loader's start, a
    validation), which is exactly what happens at an epoch's end. (Data order and augmentation do
    not use these generators: see data/sampling.py.)"""

    def __init__(self, seed: int):
        self.seed = seed
        self.batches = 0  # training batches started; at a save, all of them are done

    def state_dict(self) -> dict:
        return {"batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.batches = int(state.get("batches", 0))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        seed = int(np.random.SeedSequence([self.seed, self.batches, trainer.global_rank]).generate_state(1)[0])
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        self.batches += 1


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint beside its destination, flushes it to disk, then renames it over the old
    one: a kill or a full disk during a save leaves the previous checkpoint whole."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        try:
            super().save_checkpoint(checkpoint, partial, storage_options)
            with open(partial, "rb") as written:
                os.fsync(written.fileno())
            os.replace(partial, path)
        except OSError as err:
            partial.unlink(missing_ok=True)
            kept = "the previous one is kept" if path.exists() else "no earlier one exists"
            raise CheckpointError(f"could not write checkpoint {path}: {err.strerror or err}; {kept}") from err


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the message names the step, learning rate and images."""


def check_finite_weights(trainer, pl_module, batch: dict | None) -> None:
    """Before last.ckpt is overwritten: weights that an update has made inf or NaN stop the run
    instead, so the checkpoint on disk stays the last good one."""
    network = getattr(pl_module, "model", pl_module)  # weights and batch-norm statistics, not bookkeeping
    if all(torch.isfinite(t).all() for t in network.state_dict().values() if t.is_floating_point()):
        return
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    names = f" on images {', '.join(batch['name'])}" if batch and batch.get("name") else ""
    raise NonFiniteLoss(f"the weights are not finite after step {trainer.global_step} (lr {lr:.3g}){names}; "
                        "last.ckpt keeps the last good step; lower optim.lr or set trainer.gradient_clip_val, then "
                        f"resume with ckpt_path={trainer.default_root_dir}")


class Interrupted(RuntimeError):
    """Ctrl-C stopped the run cleanly after a step, with last.ckpt written."""

    exit_code = 130  # what a shell reports for a process stopped by SIGINT


class LastCheckpoint(ModelCheckpoint):
    """checkpoints/last.ckpt, the one file a resume needs: every `every_n_train_steps` steps, after
    every validation and at the end of every epoch, whether or not val/mIoU improved (Lightning's
    save_last follows the ranked saves only). The first Ctrl-C finishes the running step, writes
    it and stops; a second one interrupts at once."""

    def __init__(self, dirpath: str, every_n_train_steps: int):
        # No last-v1.ckpt beside a last.ckpt of unknown origin (a run folder copied elsewhere):
        # this file is always the one to resume from.
        super().__init__(dirpath=dirpath, save_top_k=0, save_last=True, every_n_train_steps=every_n_train_steps,
                         enable_version_counter=False)
        self.interrupted = False
        self._previous_handler = None

    def on_train_start(self, trainer, pl_module) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        signal.signal(signal.SIGINT, self._previous_handler or signal.default_int_handler)
        self.interrupted = True
        rank_zero_only(print)("\nCtrl-C: stopping after this step with last.ckpt written (again to stop now)")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        due = trainer.global_step % self._every_n_train_steps == 0
        # A step whose validation is still to run is saved after it (on_validation_end): Lightning
        # resumes a checkpoint written here past that validation, and val/mIoU_best would miss it.
        if due and not self._should_skip_saving_checkpoint(trainer) and not _validation_follows(trainer):
            check_finite_weights(trainer, pl_module, batch)
            self._save_last(trainer)
        if self.interrupted:
            self._save_last(trainer)
            trainer.should_stop = True

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._should_skip_saving_checkpoint(trainer):  # (which skips sanity checks and non-fit runs)
            check_finite_weights(trainer, pl_module, None)
            self._save_last(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            check_finite_weights(trainer, pl_module, None)
        self._save_last(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)

    def _save_last(self, trainer) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def _validation_follows(trainer) -> bool:
    """Whether Lightning validates right after the batch that just ended (its own decision,
    asked the same way its training loop asks it)."""
    loop = trainer.fit_loop
    return bool(loop.epoch_loop._should_check_val_fx(loop._data_fetcher))


def resume_command_line(args: list[str]) -> list[str]:
    """`ckpt_path=RUN_DIR` or `ckpt_path=RUN_DIR/checkpoints/X.ckpt` continues that run where it
    stands: its stored overrides first (the command line's own come after and win, e.g. a longer
    trainer.max_steps), `hydra.run.dir=RUN_DIR` so the same folder, logs and W&B run go on, and
    ckpt_path pointing at the file. `ckpt_path=last` with `hydra.run.dir=RUN_DIR` does the same."""
    given = {arg.split("=", 1)[0]: arg.split("=", 1)[1] for arg in args if "=" in arg and not arg.startswith("-")}
    value = given.get("ckpt_path")
    if value in (None, "null") or "-m" in args or "--multirun" in args:
        return args
    if value == "last":
        if "hydra.run.dir" not in given:
            return args  # the run's own folder is the new one: train() says there is nothing to resume
        run_dir = Path(given["hydra.run.dir"])
        checkpoint = run_dir / "checkpoints" / "last.ckpt"
    elif Path(value).is_dir():
        run_dir, checkpoint = Path(value), Path(value) / "checkpoints" / "last.ckpt"
        if not checkpoint.exists():
            raise CheckpointError(f"ckpt_path={value} is a folder without checkpoints/last.ckpt; give a run "
                                  "directory written by train.py or a .ckpt file")
    else:
        checkpoint = Path(value)
        run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None
    stored = run_dir / ".hydra" / "overrides.yaml" if run_dir is not None else None
    if stored is None or not stored.is_file():
        return args  # a checkpoint from elsewhere: a new run dir, the config of this command line
    from omegaconf import OmegaConf

    previous = [a for a in OmegaConf.load(stored) if a.split("=", 1)[0] not in ("ckpt_path", "hydra.run.dir")]
    ours = [a for a in args if a.split("=", 1)[0] not in ("ckpt_path", "hydra.run.dir", "hydra.output_subdir")]
    # This resume's config goes beside the run's original one, which stays what a resume reads.
    subdir = f".hydra/resume-{len(list((run_dir / '.hydra').glob('resume-*'))) + 1}"
    return [*previous, *ours, f"ckpt_path={checkpoint}", f"hydra.run.dir={run_dir}", f"hydra.output_subdir={subdir}"]


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str) -> str | None:
    """`last` is this run directory's checkpoints/last.ckpt; it must exist (no silent fresh start).
    A job SLURM has requeued (SLURM_RESTART_COUNT > 0: preempted, or timed out under submitit)
    continues from its run directory's last.ckpt, unless Lightning's own SIGUSR1 save
    (hpc_ckpt_N.ckpt) is there, which Lightning then resumes from."""
    if ckpt_path is None:
        last = Path(output_dir) / "checkpoints" / "last.ckpt"
        restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
        if restarts > 0 and last.is_file() and not list(Path(output_dir).glob("hpc_ckpt_*.ckpt")):
            rank_zero_only(print)(f"SLURM requeue {restarts}: resuming from {last}")
            return str(last)
        return None
    if ckpt_path == "last":
        last = Path(output_dir) / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise CheckpointError(f"ckpt_path=last: {last} does not exist; give the run to resume: "
                                  "ckpt_path=outputs/runs/DATE/TIME (its folder or a .ckpt in it)")
        return str(last)
    return str(ckpt_path)


# What a training run writes into its directory; overwrite=true removes these and nothing else.
RUN_FILES = (".hydra", "checkpoints", "csv", "wandb", "stage2", "summary.json", "train.log")


def check_fresh_run_dir(args: list[str], conf_dir: Path) -> None:
    """A fresh run (or sweep) may not start in a directory that holds another run's checkpoints:
    the two would mix (last.ckpt of one beside last-v1.ckpt of the other, one summary.json).
    A resume from a checkpoint in that directory is no fresh run; overwrite=true replaces the
    earlier run's files before Hydra writes any."""
    from deeplab.config import CommandLine, output_dir

    line = CommandLine.parse(args, "train")
    if not line.runs_job:
        return
    key, target, cfg = output_dir(line, conf_dir)
    if target is None or not target.is_dir():
        return
    runs = [d for d in target.iterdir() if d.is_dir()] if line.multirun else [target]
    used = [run for run in runs if any((run / "checkpoints").glob("*.ckpt"))]
    if not used:
        return
    ckpt_path = cfg.get("ckpt_path")
    if not line.multirun and ckpt_path not in (None, "last") and Path(ckpt_path).resolve().parent == (
            target / "checkpoints").resolve():
        return  # continuing this very run
    if int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0 or list(target.glob("hpc_ckpt_*.ckpt")):
        return  # a requeued SLURM job: the same command again, continued by resolve_ckpt_path or Lightning
    if not cfg.get("overwrite", False):
        if line.multirun:
            raise CheckpointError(f"{key}={target} holds the checkpoints of an earlier sweep ({len(used)} runs); "
                                  f"start this one in another {key}, or replace that one with overwrite=true")
        raise CheckpointError(f"{key}={target} holds another run's checkpoints; continue that run with "
                              f"ckpt_path={target}, start this one in another {key}, or replace that one with "
                              "overwrite=true")
    for run in runs:
        for name in RUN_FILES:
            path = run / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    print(f"overwrite=true: removed the earlier {'sweep' if line.multirun else 'run'}'s files from {target}")
