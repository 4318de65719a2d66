"""One training run from a composed config: build, fit, report the best validation mIoU."""

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from deeplab.config import describe, validate
from deeplab.training.build import build_datamodule, build_model, inference_settings, resolve_normalisation
from deeplab.training.callbacks import ConfigInCheckpoint, RunSummary
from deeplab.training.module import SegmentationModule


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def train(cfg: DictConfig, choices: dict | None = None) -> float | None:
    validate(cfg)
    for note in resolve_normalisation(cfg):
        rank_zero_only(print)(note)
    rank_zero_only(print)(describe(cfg, choices))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = build_datamodule(cfg.data, cfg.aug)
    datamodule.check()  # fail fast on missing data, before models and loggers start
    model = build_model(cfg.model, num_classes=cfg.data.num_classes)
    module = SegmentationModule(
        model=model,
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optim.optimizer),
        scheduler=instantiate(cfg.optim.scheduler),
        num_classes=cfg.data.num_classes,
        class_names=list(cfg.data.class_names),
        ignore_index=cfg.data.ignore_index,
        eval_output_stride=cfg.eval.output_stride,
        inference=inference_settings(cfg.eval, cfg.data.crop_size),
    )

    config = OmegaConf.to_container(cfg, resolve=True)
    params = sum(p.numel() for p in model.parameters())
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    callbacks += [ConfigInCheckpoint(config), RunSummary(cfg.paths.output_dir, params=params)]
    loggers = [instantiate(c) for c in cfg.logger.values() if c is not None]
    for logger in loggers:
        logger.log_hyperparams({**_flatten(config), "params": params})
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)

    best = trainer.callback_metrics.get("val/mIoU_best")
    return float(best) if best is not None else None
