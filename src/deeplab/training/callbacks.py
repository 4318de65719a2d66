"""Callbacks that record the run: the resolved config in every checkpoint, summary.json at the end."""

import json
import time
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from deeplab.builders.checkpoint import CONFIG_KEY
from deeplab.log import LOG
from deeplab.training.pruning import ValidationHistory, epochs_trained


class ConfigInCheckpoint(pl.Callback):
    """Stores the resolved run config in each checkpoint, so a checkpoint path alone rebuilds the run."""

    def __init__(self, config: dict):
        self.config = config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.config


class RunSummary(pl.Callback):
    """Measures training throughput (validation excluded) and writes `summary.json` when fit ends."""

    def __init__(self, output_dir: str, params: int | None = None, madds: int | None = None,
                 settings: dict | None = None, extra: dict | None = None, target_miou: float | None = None):
        self.path = Path(output_dir) / "summary.json"
        self.params, self.madds, self.settings = params, madds, settings or {}
        self.extra = extra or {}  # what the run resolved at start (class weights), as it is
        self.train_seconds = 0.0
        self.train_images = 0
        self._fit_start = self._batch_start = None
        self.validation: dict[str, float] = {}  # the last validation's val/ metrics, kept in checkpoints
        self.validations = 0  # validations run so far, across resumes
        self.target_miou = target_miou
        self.reached: dict | None = None  # where val/mIoU first reached target_miou: step, epoch, seconds

    def state_dict(self) -> dict:
        # A run resumed from its final checkpoint validates no more, and still reports its results.
        return {"validation": dict(self.validation), "validations": self.validations, "reached": self.reached}

    def load_state_dict(self, state: dict) -> None:
        self.validation = dict(state.get("validation", {}))
        self.validations = int(state.get("validations", 0))
        self.reached = state.get("reached")

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.validation = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
            self.validations += 1
            miou = self.validation.get("val/mIoU")
            if self.target_miou is not None and self.reached is None and miou is not None and miou >= self.target_miou:
                # seconds since fit started in this process (a resumed run counts from its resume)
                self.reached = {"target": self.target_miou, "val/mIoU": miou, "step": trainer.global_step,
                                "epoch": epochs_trained(trainer), "seconds": time.perf_counter() - self._fit_start}

    def on_fit_start(self, trainer, pl_module) -> None:
        self._fit_start = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._batch_start is None:
            self._batch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # From one batch's end to the next one's includes data loading, as real throughput should.
        now = time.perf_counter()
        self.train_seconds += now - self._batch_start
        self.train_images += batch["image"].shape[0] * trainer.world_size
        self._batch_start = now

    def on_validation_start(self, trainer, pl_module) -> None:
        self._batch_start = None  # validation time is not training time

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._batch_start = None

    def summary(self, trainer) -> dict:
        metrics = {**self.validation,
                   **{k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}}
        checkpoints = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
        checkpoint = next((c for c in checkpoints if c.monitor), None)  # the ranked one: best.ckpt
        last = next((c.last_model_path for c in checkpoints if c.last_model_path), None)
        history = next((c for c in trainer.callbacks if isinstance(c, ValidationHistory)), None)
        return {
            "val/mIoU": metrics.get("val/mIoU"),
            "val/mIoU_best": metrics.get("val/mIoU_best"),
            "val/pixel_acc": metrics.get("val/pixel_acc"),
            "per_class_iou": {k.removeprefix("val/iou/"): v for k, v in metrics.items() if k.startswith("val/iou/")},
            # task=binary: the foreground's scores; task=multilabel: each label's F1 and their mean
            **{k: metrics[k] for k in ("val/fg_IoU", "val/Dice", "val/precision", "val/recall", "val/mF1")
               if k in metrics},
            **({"per_label_f1": {k.removeprefix("val/f1/"): v for k, v in metrics.items() if k.startswith("val/f1/")}}
               if any(k.startswith("val/f1/") for k in metrics) else {}),
            "best_ckpt": checkpoint.best_model_path or None if checkpoint else None,
            "last_ckpt": last,
            "epochs": trainer.current_epoch,
            "validations": self.validations,
            "global_step": trainer.global_step,
            "params": self.params,
            "madds": self.madds,
            "settings": self.settings,
            "train_images_per_sec": self.train_images / self.train_seconds if self.train_seconds else None,
            "duration_s": time.perf_counter() - self._fit_start if self._fit_start else None,
            "pruned": history.pruned if history is not None else None,  # by sweep.prune: where and why
            "reached": self.reached,  # where val/mIoU first reached target_miou (null: not reached, or off)
            **self.extra,
        }

    @rank_zero_only
    def on_fit_end(self, trainer, pl_module) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        summary = self.summary(trainer)
        self.path.write_text(json.dumps(summary, indent=2) + "\n")
        best = summary["val/mIoU_best"]
        LOG.info(f"val/mIoU_best {best:.4f}" if best is not None else "no validation ran")
        LOG.info(f"summary: {self.path}")
