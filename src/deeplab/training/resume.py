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

from deeplab.errors import CheckpointError, NothingToDo, UserError
from deeplab.log import LOG


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


class NonFiniteLoss(UserError):
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
                        f"{resume_advice(trainer.default_root_dir)}")


def resume_advice(run_dir) -> str:
    """What to do after a stop on non-finite numbers: resume only where a checkpoint exists."""
    if (Path(run_dir) / "checkpoints" / "last.ckpt").is_file():
        return ("last.ckpt keeps the last good step; lower optim.lr or set trainer.gradient_clip_val, then resume "
                f"with ckpt_path={run_dir}")
    return "no checkpoint was written before it; lower optim.lr or set trainer.gradient_clip_val and start again"


class Interrupted(UserError):
    """Ctrl-C stopped the run cleanly after a step, with last.ckpt written."""

    exit_code = 130  # what a shell reports for a process stopped by SIGINT


class LastCheckpoint(ModelCheckpoint):
    """checkpoints/last.ckpt, the one file a resume needs: every `every_n_train_steps` steps, after
    every validation and at the end of every epoch, whether or not val/mIoU improved (Lightning's
    save_last follows the ranked saves only). The first Ctrl-C finishes the running step, writes
    it and stops; in a validation it stops after the running batch, keeping the last.ckpt written
    before that validation (one written part-way through would resume past it); a second Ctrl-C
    interrupts at once."""

    def __init__(self, dirpath: str, every_n_train_steps: int):
        # No last-v1.ckpt beside a last.ckpt of unknown origin (a run folder copied elsewhere):
        # this file is always the one to resume from.
        super().__init__(dirpath=dirpath, save_top_k=0, save_last=True, every_n_train_steps=every_n_train_steps,
                         enable_version_counter=False)
        self.interrupted = False
        self._previous_handler = None
        self.saved_step: int | None = None  # the step of the last.ckpt this process wrote
        self.stopped_at: int | None = None  # the step after which a Ctrl-C's last.ckpt was written

    def on_train_start(self, trainer, pl_module) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        signal.signal(signal.SIGINT, self._previous_handler or signal.default_int_handler)
        self.interrupted = True
        LOG.info("\nCtrl-C: stopping after this step with last.ckpt written (again to stop now)")

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
            self.stopped_at = trainer.global_step  # Lightning may still validate once: that is cut short

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not self.interrupted or trainer.sanity_checking:
            return
        last = Path(self.dirpath) / "last.ckpt"
        if self.stopped_at is not None:  # the step's checkpoint is written: no validation is owed for it
            raise Interrupted(stopped_message(self.stopped_at, last, trainer.default_root_dir))
        if self.saved_step is not None:
            kept = f"{last} (step {self.saved_step}) is kept; resume with ckpt_path={trainer.default_root_dir}"
        elif last.is_file():
            kept = f"{last} (from before this command) is kept; resume with ckpt_path={trainer.default_root_dir}"
        else:
            kept = "no checkpoint was written yet; start again"
        raise Interrupted(f"stopped by Ctrl-C during the validation after step {trainer.global_step}; {kept}")

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

    def on_fit_end(self, trainer, pl_module) -> None:
        # A run resumed from a checkpoint written at its very end (a final best.ckpt) trains
        # nothing, so no hook above saves: that checkpoint is its last state, kept as last.ckpt.
        last = Path(self.dirpath) / "last.ckpt"
        if trainer.ckpt_path and not last.is_file() and trainer.is_global_zero:
            partial = last.with_name(".last.ckpt.partial")
            last.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(trainer.ckpt_path, partial)
            os.replace(partial, last)  # whole or absent, as every checkpoint this run writes

    def _save_last(self, trainer) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            self.saved_step = trainer.global_step


def stopped_message(step: int, last: Path, run_dir) -> str:
    return f"stopped by Ctrl-C after step {step}; {last} is written; resume with ckpt_path={run_dir}"


def _validation_follows(trainer) -> bool:
    """Whether Lightning validates right after the batch that just ended (its own decision,
    asked the same way its training loop asks it)."""
    loop = trainer.fit_loop
    return bool(loop.epoch_loop._should_check_val_fx(loop._data_fetcher))


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str) -> str | None:
    """`last` is this run directory's checkpoints/last.ckpt; it must exist (no silent fresh start).
    A job SLURM has requeued (SLURM_RESTART_COUNT > 0: preempted, or timed out under submitit)
    continues from its run directory's last.ckpt, unless Lightning's own SIGUSR1 save
    (hpc_ckpt_N.ckpt) is there, which Lightning then resumes from."""
    if ckpt_path is None:
        last = Path(output_dir) / "checkpoints" / "last.ckpt"
        restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
        if restarts > 0 and last.is_file() and not list(Path(output_dir).glob("hpc_ckpt_*.ckpt")):
            LOG.info(f"SLURM requeue {restarts}: resuming from {last}")
            return str(last)
        return None
    if ckpt_path == "last":
        last = Path(output_dir) / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise CheckpointError(f"ckpt_path=last: {last} does not exist; give the run to resume: "
                                  "ckpt_path=outputs/runs/DATE/TIME (its folder or a .ckpt in it)")
        return str(last)
    return str(ckpt_path)


def check_resume_from(ckpt_path: str, cfg, run_dir: Path | None) -> None:
    """A resume continues the network the checkpoint holds (another is refused in one line); a
    resume of a run with nothing left to train is NothingToDo, before any file is written."""
    from omegaconf import OmegaConf

    from deeplab.builders.checkpoint import check_same_network, load_checkpoint

    checkpoint = load_checkpoint(ckpt_path)
    check_same_network(checkpoint, cfg, ckpt_path)  # (training checks it again for callers of train() alone)
    if run_dir is None or Path(ckpt_path).resolve().parent != (run_dir / "checkpoints").resolve():
        return  # a checkpoint from elsewhere starts a new run
    finished = _finished(checkpoint, cfg.trainer)
    second = OmegaConf.select(cfg, "finetune.second_stage")
    if finished and second is not None:  # the paper's schedule goes on with stage 2 in RUN/stage2
        stage2 = run_dir / "stage2" / "checkpoints" / "last.ckpt"
        trainer = OmegaConf.merge(cfg.trainer, {k.removeprefix("trainer."): v for k, v in second.overrides.items()
                                                if k.startswith("trainer.")})
        finished = _finished(load_checkpoint(stage2), trainer) if stage2.is_file() else None
    # A run killed after its final save but before its summary still gets its records written (by
    # LastCheckpoint.on_fit_end and RunSummary): only a complete run is left alone.
    complete = (run_dir / "summary.json").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    if finished and complete:
        raise NothingToDo(f"{run_dir} finished at {finished}; nothing was changed")


def _finished(checkpoint: dict, trainer) -> str | None:
    """Where a checkpoint stands if the trainer limits would train nothing more from it, worded
    with the key to raise; None if there is training left. The epochs done are the DataModule's
    own record (SegmentationDataModule.state_dict), not Lightning's loop counters."""
    step = int(checkpoint.get("global_step", 0))
    position = checkpoint.get("SegmentationDataModule") or {}
    epochs = int(position.get("epoch", 0)) if not position.get("batches") else None
    max_steps, max_epochs = trainer.get("max_steps", -1), trainer.get("max_epochs")
    if max_steps not in (None, -1) and step >= max_steps:
        return f"step {step}; raise trainer.max_steps to train on"
    if max_epochs not in (None, -1) and epochs is not None and epochs >= max_epochs:
        return f"epoch {epochs}; raise trainer.max_epochs to train on"
    return None
