"""Early stopping of hopeless sweep jobs. Every validation's val/mIoU goes into the run directory's
validation.jsonl; with `sweep.prune=median` a job compares its value with the median of the
other jobs of its sweep at the same point of training, read from their files, and stops when it
is below (as Optuna's MedianPruner does, but across Hydra jobs and launchers)."""

import json
import math
import statistics
from pathlib import Path

import pytorch_lightning as pl

from deeplab.log import LOG

HISTORY = "validation.jsonl"
METRIC = "val/mIoU"


def epochs_trained(trainer: pl.Trainer) -> float:
    """Epochs trained when this validation runs: 1.0 after the first epoch, 1.5 halfway through
    the second (with trainer.val_check_interval < 1), so jobs compare at the same point."""
    total = trainer.num_training_batches
    done = trainer.fit_loop.epoch_loop.batch_progress.current.ready
    if not math.isfinite(total) or total <= 0:
        return float(trainer.current_epoch + 1)
    return round(trainer.current_epoch + min(done, total) / total, 4)


def read_history(path: Path) -> dict[float, float]:
    """{epochs trained: val/mIoU} of one job; a resumed job's repeated validation counts once, the
    later value; a line still being written by a running job is skipped."""
    history = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            history[float(record["epoch"])] = float(record[METRIC])
        except (ValueError, KeyError, TypeError):
            continue
    return history


class ValidationHistory(pl.Callback):
    """Appends {epoch, step, val/mIoU} to <run dir>/validation.jsonl after each validation; with
    `prune="median"` and a sweep dir, stops the job when, after `prune_after` epochs, its val/mIoU
    is below the median of its peers' (the sweep's other jobs with a value at that epoch)."""

    def __init__(self, run_dir: str, sweep_dir: str | None = None, prune: str | None = None,
                 prune_after: float = 1):
        self.path = Path(run_dir) / HISTORY
        self.sweep_dir = Path(sweep_dir) if sweep_dir else None
        self.prune, self.prune_after = prune, prune_after
        self.pruned: dict | None = None  # {epoch, val/mIoU, median, peers} once pruned

    def state_dict(self) -> dict:
        return {"pruned": self.pruned}

    def load_state_dict(self, state: dict) -> None:
        # A pruned job resumed with pruning on stays stopped; with sweep.prune=null it trains on.
        self.pruned = state.get("pruned") if self.prune else None

    def on_train_start(self, trainer, pl_module) -> None:
        if self.pruned is not None:
            trainer.should_stop = True
            LOG.info(f"pruned after {self.pruned['epoch']:g} epochs when it last ran; resume with sweep.prune=null "
                     "to train it on")

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or METRIC not in trainer.callback_metrics:
            return
        epoch, value = epochs_trained(trainer), float(trainer.callback_metrics[METRIC])
        decision = None
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as handle:
                handle.write(json.dumps({"epoch": epoch, "step": trainer.global_step, METRIC: value}) + "\n")
            if self.prune == "median" and self.sweep_dir is not None and epoch >= self.prune_after:
                decision = self._below_median(epoch, value)
        decision = trainer.strategy.broadcast(decision, src=0)  # every process stops, or none
        if decision is not None and self.pruned is None:
            self.pruned = decision
            trainer.should_stop = True
            LOG.info(f"pruned: {METRIC} {value:.4f} after {epoch:g} epochs is below the median "
                     f"{decision['median']:.4f} of {decision['peers']} other jobs of the sweep (sweep.prune=median)")

    def peers(self) -> list[Path]:
        """The other jobs' files at this file's place in their run dirs (stage2/ with stage2/)."""
        own, sweep = self.path.resolve(), self.sweep_dir.resolve()
        if not own.is_relative_to(sweep):
            return []
        inside = own.relative_to(sweep).parts[1:]
        return sorted(p for p in sweep.glob(str(Path("*", *inside))) if p.resolve() != own)

    def _below_median(self, epoch: float, value: float) -> dict | None:
        values = [history[epoch] for history in map(read_history, self.peers()) if epoch in history]
        if not values:
            return None
        median = statistics.median(values)
        return {"epoch": epoch, METRIC: value, "median": median, "peers": len(values)} if value < median else None


def pruned_record(run_dir: str) -> dict | None:
    """What pruned the job (epoch, its last val/mIoU, the median), from the summary.json that rank
    zero wrote (also when a user's trainer.strategy=ddp_spawn ran it in processes of their own);
    None when it was not pruned."""
    path = Path(run_dir) / "summary.json"
    return json.loads(path.read_text()).get("pruned") if path.is_file() else None
