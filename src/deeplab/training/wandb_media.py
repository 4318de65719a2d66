"""What a W&B dashboard shows beyond scalars: predicted and true masks, a confusion matrix, and
the model's size and cost in the run summary."""

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from deeplab.data.base import as_rgb
from deeplab.data.preview import preview_grid
from deeplab.inference.multiscale import predict_classes, predict_probs
from deeplab.inference.per_image import lowest_first, miou


def _wandb_logger(trainer) -> WandbLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)


class WandbMedia(pl.Callback):
    """Every `every_n_epochs` validations, logs the first `num_images` validation images with
    their predicted and true masks (class names as labels) and the confusion matrix as W&B's
    interactive chart; at the start, puts `summary` (params, madds, the departures from the
    paper's protocol, class weights) in the run summary. With `aug_colours` (the class colours), the
    first training batch of a run as augmentation made it, shown with the first validation's media
    as `train/aug_preview` (what tools/show_aug.py draws). Does nothing without a WandbLogger."""

    def __init__(self, every_n_epochs: int = 1, num_images: int = 4, num_worst: int = 0, summary: dict | None = None,
                 aug_colours: np.ndarray | None = None):
        self.every_n_epochs, self.num_images, self.num_worst = every_n_epochs, num_images, num_worst
        self.summary = dict(summary or {})
        self.aug_colours, self._aug_preview = aug_colours, None

    @rank_zero_only
    def on_fit_start(self, trainer, pl_module) -> None:
        logger = _wandb_logger(trainer)
        if logger is not None:
            logger.experiment.summary.update(self.summary)

    @rank_zero_only
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.aug_colours is None or trainer.global_step or _wandb_logger(trainer) is None:
            return  # a resumed run showed its first batch before
        normalise = pl_module.normalise  # the batch arrives normalised: back to the pixels as read
        std = batch["image"].new_tensor(normalise.std).view(-1, 1, 1) * normalise.max_pixel_value
        mean = batch["image"].new_tensor(normalise.mean).view(-1, 1, 1) * normalise.max_pixel_value
        pixels = (batch["image"].detach().float() * std + mean).round().permute(0, 2, 3, 1).cpu().numpy()
        images = [as_rgb(p, normalise.max_pixel_value) for p in pixels]
        self._aug_preview = preview_grid(images, list(batch["mask"].cpu().numpy()), self.aug_colours,
                                         pl_module.ignore_index)[0]

    @rank_zero_only
    def on_validation_end(self, trainer, pl_module) -> None:  # after the module computed the metrics
        logger = _wandb_logger(trainer)
        if logger is None or trainer.sanity_checking:
            return
        import wandb

        payload = {}
        if self._aug_preview is not None:  # with the first validation, whatever every_n_epochs says
            payload["train/aug_preview"] = wandb.Image(self._aug_preview, caption="first training batch after "
                                                       "augmentation: image, mask overlay (void in cream)")
            self._aug_preview = None
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            payload.update(self._media(trainer, pl_module, wandb))
        if payload:  # WandbLogger keeps W&B's own step; the trainer's step goes in as a value, as for the metrics
            logger.experiment.log({**payload, "trainer/global_step": trainer.global_step})

    def _media(self, trainer, pl_module, wandb) -> dict:
        names = {i: name for i, name in enumerate(pl_module.class_names)}
        images = self._images(trainer, pl_module, wandb, {**names, _void_label(pl_module): "void"})
        # one key an image: W&B shows a list of images of different sizes wrongly
        payload = {f"val/prediction_{i}": image for i, image in enumerate(images)}
        if pl_module.last_confmat is not None:
            payload["val/confusion_matrix"] = self._confusion(wandb, pl_module.last_confmat.numpy(), names)
        if self.num_worst and pl_module.per_image is not None and pl_module.per_image.names:
            payload["val/worst"] = self._worst(trainer, pl_module, wandb, {**names, _void_label(pl_module): "void"})
        if pl_module.last_trimap:  # the paper's Fig. 5a: mIoU within the band against its width
            table = wandb.Table(columns=["width", "mIoU"], data=[[w, m] for w, m in pl_module.last_trimap.items()])
            payload["val/trimap_curve"] = wandb.plot.line(table, "width", "mIoU", title="trimap mIoU by band width")
        return payload

    def _worst(self, trainer, pl_module, wandb, labels: dict):
        """A table of the validation images of lowest mIoU (this process's share under DDP): name,
        score, and the image with its predicted and true masks."""
        tp, fp, fn = pl_module.per_image.arrays()
        scores = miou(tp, fp, fn)
        order = lowest_first(scores, self.num_worst)
        where = {sample.name: i for i, sample in enumerate(trainer.datamodule.val_set.samples)}
        table = wandb.Table(columns=["image", "mIoU", "prediction"])
        for index in order:
            name = pl_module.per_image.names[index]
            table.add_data(name, float(scores[index]), self._image(trainer, pl_module, wandb, labels, where[name]))
        return table

    def _images(self, trainer, pl_module, wandb, labels: dict) -> list:
        count = min(self.num_images, len(trainer.datamodule.val_set))
        return [self._image(trainer, pl_module, wandb, labels, index) for index in range(count)]

    @staticmethod
    def _image(trainer, pl_module, wandb, labels: dict, index: int):
        """Validation image `index` with its predicted and true masks."""
        datamodule = trainer.datamodule
        sample = datamodule.val_set[index]
        image = pl_module.normalise(sample["image"][None].to(pl_module.device))
        predicted = predict_classes(predict_probs(pl_module.evaluation_model(), image, **pl_module.inference),
                                    pl_module.task)[0]
        pixels = sample["image"].permute(1, 2, 0).numpy()
        if pl_module.task.name == "multilabel":  # a predicted and a true mask a label, each toggled on its own
            void = _void_label(pl_module)
            masks = {}
            for index, name in enumerate(pl_module.class_names):
                shown = {0: f"not {name}", 1: name, void: "void"}
                masks[f"{name} (prediction)"] = {"mask_data": predicted[index].cpu().numpy().astype(np.uint8),
                                                 "class_labels": shown}
                masks[f"{name} (truth)"] = {"mask_data": _shown_mask(sample["mask"][index].numpy(), pl_module),
                                            "class_labels": shown}
            return wandb.Image(as_rgb(pixels, datamodule.max_pixel_value), caption=sample["name"], masks=masks)
        return wandb.Image(as_rgb(pixels, datamodule.max_pixel_value), caption=sample["name"], masks={
            "prediction": {"mask_data": predicted.cpu().numpy().astype(np.uint8), "class_labels": labels},
            "ground_truth": {"mask_data": _shown_mask(sample["mask"].numpy(), pl_module), "class_labels": labels},
        })

    @staticmethod
    def _confusion(wandb, confmat: np.ndarray, names: dict):
        # The table wandb.plot.confusion_matrix builds, filled from pixel counts instead of labels.
        rows = [[names[i], names[j], int(confmat[i, j])] for i in names for j in names]
        table = wandb.Table(columns=["Actual", "Predicted", "nPredictions"], data=rows)
        fields = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}
        return wandb.plot_table("wandb/confusion_matrix/v1", table, fields, {"title": "Confusion matrix (pixels)"})


def finish_wandb(loggers, failed: bool) -> None:
    """Closes the job's W&B run, so that the next job of a sweep (same process) starts its own."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish(exit_code=1 if failed else 0)


def _void_label(pl_module) -> int:
    """W&B masks are 8-bit: data.ignore_index shows as itself when it fits, else as 255."""
    return pl_module.ignore_index if 0 <= pl_module.ignore_index <= 255 else 255


def _shown_mask(mask: np.ndarray, pl_module) -> np.ndarray:
    return np.where(mask == pl_module.ignore_index, _void_label(pl_module), mask).astype(np.uint8)
