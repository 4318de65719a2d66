"""One training run from a composed config: build, fit, report the best validation mIoU."""

import copy
import warnings
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar

from deeplab.builders.checkpoint import check_resumable, model_from_checkpoint
from deeplab.builders.fast import apply_fast_path
from deeplab.builders.init_from import init_from
from deeplab.builders.model import build_network, inference_settings, resolve_normalisation
from deeplab.data.preview import class_colours
from deeplab.errors import ConfigError
from deeplab.inference.complexity import count_madds
from deeplab.inference.pixels import normaliser
from deeplab.inference.task import task_of
from deeplab.log import LOG
from deeplab.model.parts import resolve_group
from deeplab.schema import validate
from deeplab.training.callbacks import ConfigInCheckpoint, RunSummary
from deeplab.training.datamodule import build_datamodule
from deeplab.training.describe import describe
from deeplab.training.deviations import deviations
from deeplab.training.finetune import StagedFinetuning, parameter_groups
from deeplab.training.losses import resolve_class_weights, resolve_pos_weight
from deeplab.training.module import SegmentationModule
from deeplab.training.precision import resolve_precision
from deeplab.training.pruning import ValidationHistory, pruned_record
from deeplab.training.resume import (
    AtomicCheckpointIO,
    Interrupted,
    LastCheckpoint,
    StepSeed,
    resolve_ckpt_path,
    stopped_message,
)
from deeplab.training.sweep import job_identity, sweep_dir
from deeplab.training.wandb_media import WandbMedia, finish_wandb


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def train(cfg: DictConfig, choices: dict | None = None, initial_weights: str | dict | None = None) -> float | None:
    """Trains one run (and, with finetune=paper, its second stage); returns val/mIoU_best. The
    config has passed the schema (deeplab.schema.validate): the command line checks it before the
    run directory is made."""
    for note in resolve_normalisation(cfg):
        LOG.info(note)
    resolve_precision(cfg.trainer)
    accelerator = cfg.trainer.get("accelerator")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():  # Lightning's own words name no key
        raise ConfigError(f"trainer.accelerator={accelerator} needs a CUDA GPU and this machine has none "
                          "(torch.cuda.is_available() is False); train on the CPU with trainer=default, or "
                          "trainer.accelerator=auto")
    LOG.info(describe(cfg, choices))
    departures = deviations(cfg, choices) if cfg.get("check", {}).get("deviations", True) else []
    for line in departures:
        LOG.info(f"deviation: {line}")
    history = validation_history(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = build_datamodule(cfg.data, cfg.aug, seed=cfg.seed)
    datamodule.check()  # fail fast on missing data, before models and loggers start
    if cfg.get("check", {}).get("classes", True):
        datamodule.check_classes()
    for line in (resolve_class_weights(cfg.loss, cfg.data, datamodule),
                 resolve_pos_weight(cfg.loss, cfg.data, datamodule)):
        if line:
            LOG.info(line)
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, cfg.paths.output_dir)
    if ckpt_path is not None:
        check_resumable(ckpt_path, cfg)
    model = build_network(cfg)
    if cfg.model.get("init_from") and ckpt_path is None and initial_weights is None:
        LOG.info(init_from(model, cfg.model.init_from)[0])  # a resumed run (or stage 2) has its own weights
    if isinstance(initial_weights, str):  # the paper's second stage starts from the first one's best weights
        initial_weights = model_from_checkpoint(initial_weights)[0].state_dict()
    if initial_weights is not None:
        model.load_state_dict(initial_weights)
    stages = OmegaConf.to_container(cfg.finetune.stages)
    check_stages(model, stages)
    params = sum(p.numel() for p in model.parameters())
    madds = inference_madds(model, cfg)
    if cfg.model.get("activation_checkpointing"):
        LOG.info(f"activation checkpointing: {model.set_activation_checkpointing()} encoder blocks recompute their "
                 "activations in the backward pass")
    model = apply_fast_path(model, cfg.model)
    module = segmentation_module(cfg, model)
    optim = cfg.optim

    config = OmegaConf.to_container(cfg, resolve=True)
    settings = run_settings(cfg, identity := job_identity(choices, cfg.model.output_stride))
    callbacks = [instantiate(c) for name, c in cfg.callbacks.items() if c is not None and name != "last_checkpoint"]
    if cfg.trainer.get("enable_progress_bar") is False:  # the user's switch wins over the configured bar
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    # What resuming and the run's records depend on, built here so that no config edit removes it.
    callbacks += [LastCheckpoint(f"{cfg.paths.output_dir}/checkpoints",
                                 cfg.callbacks.last_checkpoint.every_n_train_steps),
                  ConfigInCheckpoint(config), StepSeed(cfg.seed), history,
                  RunSummary(cfg.paths.output_dir, params=params, madds=madds, settings=settings,
                             extra={"deviations": departures, **_class_weights(cfg)},
                             target_miou=cfg.get("target_miou")),
                  WandbMedia(cfg.dashboard.every_n_epochs, cfg.dashboard.num_images, cfg.dashboard.get("num_worst", 0),
                             {"params": params, "madds": madds, "deviations": departures, **_class_weights(cfg)},
                             aug_colours=class_colours(cfg.data.get("colors"), cfg.data.num_classes)
                             if cfg.dashboard.get("aug_preview", True) else None)]
    if stages:
        callbacks.append(StagedFinetuning(stages, base_lr=optim.lr, encoder_lr_mult=optim.encoder_lr_mult))
    loggers = [instantiate(c, **_unset(c, identity)) for c in cfg.logger.values() if c is not None]
    for logger in loggers:
        logger.log_hyperparams({**_flatten(config), "params": params, "madds": madds})
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()])
    # The module normalises batches after the transfer by design; Lightning warns whenever a module
    # with that hook meets a DataModule.
    warnings.filterwarnings("ignore", message="You have overridden `on_after_batch_transfer` in `LightningModule`")
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except BaseException:
        finish_wandb(loggers, failed=True)  # the run is closed, marked failed, and the sweep goes on
        raise
    finish_wandb(loggers, failed=False)
    last = next((c for c in callbacks if isinstance(c, LastCheckpoint)), None)
    if last is not None and last.interrupted:
        raise Interrupted(stopped_message(trainer.global_step, last.last_model_path, cfg.paths.output_dir))

    # (spawned DDP processes prune their own copies of the callback: rank zero's summary.json tells)
    pruned = history.pruned or (pruned_record(cfg.paths.output_dir) if trainer.is_global_zero else None)
    if pruned is not None:  # an Optuna trial records the value it was stopped at
        return float(pruned["val/mIoU"])
    best = trainer.callback_metrics.get("val/mIoU_best")
    if cfg.finetune.get("second_stage"):
        if trainer.fast_dev_run:  # a dry run writes no checkpoints: stage 2 takes stage 1's weights as they are
            return train_second_stage(cfg, choices, {k: v.detach().clone() for k, v in model.state_dict().items()})
        return train_second_stage(cfg, choices, trainer.checkpoint_callback.best_model_path)
    return float(best) if best is not None else None


def train_second_stage(cfg: DictConfig, choices: dict | None, first_best: str | dict) -> float | None:
    """The paper's second stage: the first stage's config with `finetune.second_stage.overrides`,
    from its best weights, every batch norm held as `second_stage.freeze_bn` says, in <run>/stage2."""
    second = cfg.finetune.second_stage
    if not first_best:
        raise ConfigError("finetune=paper: stage 1 wrote no best checkpoint (did it validate?); stage 2 needs one")
    staged = copy.deepcopy(cfg)
    for key, value in second.overrides.items():
        OmegaConf.update(staged, key, value, merge=False)
    staged.paths.output_dir = str(Path(cfg.paths.output_dir) / "stage2")
    # Stage 2 has its own checkpoints: a resumed run continues stage 2 from its own last.ckpt if it
    # got that far, and never from stage 1's checkpoint.
    stage2_last = Path(staged.paths.output_dir) / "checkpoints" / "last.ckpt"
    staged.ckpt_path = str(stage2_last) if cfg.ckpt_path is not None and stage2_last.is_file() else None
    parts = ["encoder", "aspp", "head"] + (["decoder"] if staged.model.decoder is not None else [])
    staged.finetune = {"stages": [{"start_epoch": 0, "trainable": parts, "freeze_bn": second.freeze_bn}],
                       "second_stage": None}
    validate(staged)  # the second stage's own values
    source = first_best if isinstance(first_best, str) else "stage 1's last weights (fast_dev_run saves none)"
    LOG.info(f"finetune=paper: stage 2 from {source}")
    return train(staged, choices, initial_weights=first_best)


def segmentation_module(cfg: DictConfig, model) -> SegmentationModule:
    """The LightningModule training runs (and tools/bench.py times): loss, optimizer with the
    encoder/head parameter groups, poly schedule, validation inference."""
    optim = cfg.optim
    task = task_of(cfg, cfg.eval.get("threshold"))
    return SegmentationModule(
        model=model,
        loss=instantiate(cfg.loss),
        optimizer=instantiate(optim.optimizer),
        scheduler=instantiate(optim.scheduler),
        normalise=normaliser(cfg.data),
        num_classes=cfg.data.num_classes,
        class_names=list(cfg.data.class_names),
        ignore_index=cfg.data.ignore_index,
        eval_output_stride=cfg.eval.output_stride,
        inference=inference_settings(cfg.eval, cfg.data.crop_size, task),
        param_groups=partial(parameter_groups, base_lr=optim.lr, encoder_lr_mult=optim.encoder_lr_mult,
                             bias_lr_mult=optim.bias_lr_mult),
        channels_last=cfg.model.channels_last,
        trimap=_trimap(cfg),
        per_image=bool(cfg.dashboard.get("num_worst", 0)),
        eval_fast=bool(cfg.eval.get("fast", True)),
        eval_precision=str(cfg.eval.get("precision", "fp32")),
        task=task,
    )


def validation_history(cfg: DictConfig) -> ValidationHistory:
    """validation.jsonl in the run dir and, with sweep.prune=median, the stop of a job below its
    sweep's median."""
    sweep = cfg.get("sweep") or {}
    prune, after, sweep_path = sweep.get("prune"), sweep.get("prune_after", 1), sweep_dir(cfg.paths.output_dir)
    if prune and sweep_path is None:
        raise ConfigError(f"sweep.prune={prune} compares the jobs of a sweep: run with -m (a multirun), or leave "
                          "sweep.prune=null")
    return ValidationHistory(cfg.paths.output_dir, sweep_path, prune=prune, prune_after=after)


def _trimap(cfg: DictConfig) -> dict | None:
    trimap = cfg.eval.get("trimap")
    if not trimap or not trimap.get("widths"):
        return None
    boundary = trimap.get("boundary") or cfg.data.get("boundary", "labels")
    return {"widths": [int(w) for w in trimap.widths], "boundary": boundary}


def check_stages(model, stages: list[dict]) -> None:
    """Every group a stage names exists in this model: said now, in one line, not mid-training."""
    for stage in stages:
        for group in stage.get("trainable", []):
            try:
                resolve_group(model, group)
            except ValueError as err:
                raise ConfigError(str(err)) from err


def _class_weights(cfg: DictConfig) -> dict:
    weights = cfg.loss.get("class_weights")
    return {"class_weights": dict(zip(cfg.data.class_names, weights, strict=True))} if weights is not None else {}


def _unset(node: DictConfig, identity: dict) -> dict:
    """The sweep identity for the logger arguments the config leaves empty (W&B group, name, tags)."""
    return {key: value for key, value in identity.items() if key in node and node[key] in (None, [])}


def inference_madds(model, cfg: DictConfig) -> int:
    """Multiply-Adds of one 513x513 inference at the run's eval settings, as the paper reports."""
    counted = copy.deepcopy(model)
    if cfg.eval.output_stride:
        counted.set_output_stride(cfg.eval.output_stride)
    return count_madds(counted, (513, 513), list(cfg.eval.scales), cfg.eval.flip)["madds"]


def run_settings(cfg: DictConfig, identity: dict) -> dict:
    """The paper's table columns for this run, kept in summary.json for the sweep report."""
    model = cfg.model
    return {"name": identity.get("name", ""), "backbone": model.backbone.name, "train_os": model.output_stride,
            "eval_os": cfg.eval.output_stride or model.output_stride,
            "decoder": "deeplabv3plus" if model.decoder is not None else "deeplabv3",
            "scales": [float(s) for s in cfg.eval.scales], "flip": bool(cfg.eval.flip),
            "separable": bool(model.aspp.separable and (model.decoder is None or model.decoder.separable))}


def main(cfg: DictConfig) -> float | None:
    """train.py's task: val/mIoU_best, the value an Optuna sweep optimises."""
    from hydra.core.hydra_config import HydraConfig

    return train(cfg, choices=dict(HydraConfig.get().runtime.choices))
