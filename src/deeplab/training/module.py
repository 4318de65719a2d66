"""The LightningModule: loss, SGD with the poly schedule, validation through the evaluation code
(the same predict_probs and SegmentationMetrics that eval.py uses)."""

import copy
from collections.abc import Callable, Sequence

import pytorch_lightning as pl
import torch
from torch import nn

from deeplab.builders.fast import to_channels_last
from deeplab.inference.boundary import trimap_band
from deeplab.inference.metrics import LabelMetrics, SegmentationMetrics, foreground_scores
from deeplab.inference.multiscale import predict_classes, predict_probs
from deeplab.inference.per_image import ImageCounts
from deeplab.inference.prepare import autocast, inference_precision, prepare_for_inference
from deeplab.inference.task import MULTICLASS, Task
from deeplab.training.resume import NonFiniteLoss, resume_advice


class SegmentationModule(pl.LightningModule):
    def __init__(self, model: nn.Module, loss: nn.Module, optimizer: Callable, scheduler: Callable,
                 normalise: Callable[[torch.Tensor], torch.Tensor],
                 num_classes: int, class_names: Sequence[str], ignore_index: int = 255,
                 eval_output_stride: int | None = None, inference: dict | None = None,
                 param_groups: Callable[[nn.Module], list[dict]] | None = None, channels_last: bool = False,
                 trimap: dict | None = None, per_image: bool = False, eval_fast: bool = False,
                 eval_precision: str = "fp32", task: Task = MULTICLASS):
        super().__init__()
        self.model = model
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.class_names = list(class_names)
        self.ignore_index = ignore_index
        self.eval_output_stride = eval_output_stride
        self.param_groups = param_groups  # layer-wise learning rates; None: one group
        self.channels_last = channels_last
        # Batches arrive as pixels (uint8 for 8-bit images) and uint8 labels: made network inputs and
        # loss targets here, after the transfer.
        self.normalise = normalise
        self.inference = dict(inference or {})  # predict_probs arguments: scales, flip, mode, window, stride
        self.eval_fast, self.eval_precision = eval_fast, eval_precision  # eval.fast, eval.precision
        # binary counts background and foreground in one 2 x 2 matrix; multilabel counts each label
        self.task = task
        self.val_metrics = LabelMetrics(num_classes, ignore_index=ignore_index) if task.name == "multilabel" else \
            SegmentationMetrics(num_classes, ignore_index=ignore_index)
        # The paper's trimap (eval.trimap): the same metric on the pixels within each width of a boundary.
        self.trimap_boundary = (trimap or {}).get("boundary", "labels")
        self.trimap_metrics = nn.ModuleDict({str(w): SegmentationMetrics(num_classes, ignore_index=ignore_index)
                                             for w in (trimap or {}).get("widths", [])})
        self.last_trimap: dict[int, float] = {}
        # Per-image counts of the last validation (this process's images), for the worst-case table.
        self.per_image = ImageCounts(num_classes, ignore_index) if per_image else None
        self.register_buffer("best_miou", torch.tensor(float("-inf")), persistent=True)
        # Plain lists keep these models out of state_dict, checkpoints and DDP.
        self._other_stride_model: list[nn.Module] = []
        self._eval_model: list[nn.Module] = []
        self.last_confmat: torch.Tensor | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        batch["image"] = self.normalise(batch["image"])
        batch["mask"] = batch["mask"].long()
        if self.channels_last:
            batch["image"] = to_channels_last(batch["image"])
        return batch

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if hasattr(self.loss, "step"):  # hard-pixel mining's warm-up counts optimizer steps
            self.loss.step = self.global_step
        loss = self.loss(self.model(batch["image"]), batch["mask"])
        self._batch_names = batch.get("name", [])  # for the message should this loss be NaN
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        # logged here rather than by LearningRateMonitor, which refuses to run without a logger
        groups = self.optimizers().param_groups
        base = next((g for g in groups if g.get("name") == "head"), groups[0])  # the head's lr is the base lr
        self.log("lr", base["lr"], batch_size=batch["image"].shape[0])
        if len(groups) > 1:  # layer-wise rates and fine-tuning stages: each group's own
            for index, group in enumerate(groups):
                self.log(f"lr/{group.get('name', index)}", group["lr"], batch_size=batch["image"].shape[0])
        return loss

    def on_before_backward(self, loss: torch.Tensor) -> None:
        # Before backward: the weights and last.ckpt stay the last good step's.
        if not torch.isfinite(loss):
            lr = self.optimizers().param_groups[0]["lr"]
            names = ", ".join(getattr(self, "_batch_names", [])) or "unnamed"
            raise NonFiniteLoss(f"the loss is {loss.item()} at step {self.global_step} (lr {lr:.3g}) on images "
                                f"{names}; {resume_advice(self.trainer.default_root_dir)}")

    def evaluation_model(self) -> nn.Module:
        """The model at `eval_output_stride`: the trained weights, re-dilated (built once, then
        refreshed with the current weights at each validation)."""
        if self.eval_output_stride in (None, self.model.output_stride):
            return self.model
        if not self._other_stride_model:
            other = copy.deepcopy(self.model)
            other.set_output_stride(self.eval_output_stride)
            self._other_stride_model.append(other)
        other = self._other_stride_model[0]
        other.load_state_dict(self.model.state_dict())
        return other.eval()

    def on_validation_epoch_start(self) -> None:
        # eval.py's preparation (a copy: folded batch norm, channels-last) of this validation's weights
        model = self.evaluation_model()
        self._eval_model[:] = [prepare_for_inference(model, self.eval_fast)]
        if self.per_image is not None:
            self.per_image = ImageCounts(self.per_image.num_classes, self.per_image.ignore_index)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        # At eval.precision (fp32 by default) whatever the training precision: val/mIoU is what
        # eval.py reports for these weights.
        with autocast(inference_precision(self.eval_precision, self.device), self.device):
            probs = predict_probs(self._eval_model[0], batch["image"], **self.inference).float()
        pred, mask = predict_classes(probs, self.task), batch["mask"]
        self.val_metrics.update(pred, mask)
        if self.per_image is not None:
            self.per_image.update(pred, mask, batch.get("name", [str(batch_idx)] * len(mask)))
        for width, metric in self.trimap_metrics.items():
            band = trimap_band(mask, int(width), self.trimap_boundary, self.ignore_index)
            metric.update(pred, torch.where(band, mask, self.ignore_index))

    def on_validation_epoch_end(self) -> None:
        result = self.val_metrics.compute()
        self.val_metrics.reset()
        if "confmat" in result:
            self.last_confmat = result["confmat"].cpu()  # for the W&B confusion matrix
        miou = result["mIoU"].float()
        if not self.trainer.sanity_checking:
            self.best_miou = torch.maximum(self.best_miou, miou.to(self.best_miou.device))
        self.log("val/mIoU", miou, prog_bar=True, sync_dist=False)
        self.log("val/mIoU_best", self.best_miou if torch.isfinite(self.best_miou) else miou)
        self.log("val/pixel_acc", result["pixel_acc"].float())
        if self.task.name == "binary":  # the foreground's own scores beside the mIoU of both classes
            for name, value in foreground_scores(result["confmat"]).items():
                if value == value:
                    self.log(f"val/{name}", value)
        if self.task.name == "multilabel":
            self.log("val/mF1", result["mF1"].float())
            for key, kind in (("per_label_iou", "iou"), ("per_label_f1", "f1")):
                for name, value in zip(self.class_names, result[key].tolist(), strict=True):
                    if value == value:  # labels absent from prediction and ground truth have none (NaN)
                        self.log(f"val/{kind}/{name}", value)
            return
        for name, iou in zip(self.class_names, result["per_class_iou"].tolist(), strict=True):
            if iou == iou:  # classes absent from prediction and ground truth have no IoU (NaN)
                self.log(f"val/iou/{name}", iou)
        self.last_trimap = {}
        for width, metric in self.trimap_metrics.items():
            band_miou = metric.compute()["mIoU"].float()
            metric.reset()
            self.last_trimap[int(width)] = band_miou.item()
            self.log(f"val/trimap/{width}/mIoU", band_miou)

    def configure_optimizers(self):
        if self.param_groups is not None:
            params = self.param_groups(self.model)
        else:
            params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params=params)
        scheduler = self.scheduler_factory(optimizer, total_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
