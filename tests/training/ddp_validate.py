"""Validates a checkpoint with Lightning on N CPU processes and prints the metrics as JSON.

Run by test_ddp.py as a script: Lightning's DDP launcher starts the other processes by running
this file again."""

import json
import sys

import pytorch_lightning as pl
import torch

from deeplab.builders.checkpoint import model_from_checkpoint
from deeplab.builders.model import inference_settings
from deeplab.inference.pixels import normaliser
from deeplab.training.datamodule import build_datamodule
from deeplab.training.module import SegmentationModule


def main(checkpoint: str, data_root: str, devices: int) -> None:
    model, config = model_from_checkpoint(checkpoint)
    config.data.root = config.data.dataset.root = data_root
    config.data.num_workers = 0
    module = SegmentationModule(model=model, loss=torch.nn.CrossEntropyLoss(ignore_index=255), optimizer=None,
                                scheduler=None, normalise=normaliser(config.data), num_classes=config.data.num_classes,
                                class_names=list(config.data.class_names), inference=inference_settings(
                                    config.eval, config.data.crop_size))
    config.data.prepare = None
    datamodule = build_datamodule(config.data, aug=None)
    trainer = pl.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
                         logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.validate(module, datamodule=datamodule, verbose=False)
    images = torch.tensor(len(datamodule.val_dataloader().sampler), dtype=torch.long)
    if trainer.world_size > 1:
        torch.distributed.all_reduce(images)
    if trainer.global_rank == 0:
        print(json.dumps({**{k: float(v) for k, v in metrics.items()}, "images": int(images),
                          "world_size": trainer.world_size}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
