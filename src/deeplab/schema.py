"""Every value rule of the composed config in one place: each raises a one-line ConfigError,
`KEY=VALUE is not allowed; allowed: ...`, before anything is built. Shared by train.py, eval.py,
predict.py and the tools; plain OmegaConf, no Hydra."""

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from deeplab.errors import ConfigError
from deeplab.inference.multiscale import MODES as EVAL_MODES
from deeplab.model.encoder import OUTPUT_STRIDES
from deeplab.model.encoder import WEIGHTS as BACKBONE_WEIGHTS

MAX_CROP = 4096


def _require(ok: bool, key: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={_as_written(value)} is not allowed; allowed: {allowed}")


def _as_written(value):
    """A value as it is written on the command line: null, true, false."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else value


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]


def validate(cfg: DictConfig) -> None:
    """Value checks on a composed config, each raising a one-line ConfigError."""
    model, data, optim, evaluation = cfg.model, cfg.data, cfg.optim, cfg.eval
    _require(model.output_stride in OUTPUT_STRIDES, "model.output_stride", model.output_stride, "8, 16, 32")
    _require(model.backbone.weights in BACKBONE_WEIGHTS, "model.backbone.weights", model.backbone.weights,
             "imagenet, null")
    for key in ("channels_last", "compile"):
        _require(isinstance(model.get(key, False), bool), f"model.{key}", model.get(key), "true, false")
    rates = _as_list(model.aspp.rates)
    _require(len(rates) > 0 and all(isinstance(r, int) and r > 0 for r in rates), "model.aspp.rates",
             rates, "a list of positive integers")
    _require(isinstance(model.aspp.channels, int) and model.aspp.channels > 0, "model.aspp.channels",
             model.aspp.channels, "a positive integer")
    _require(0 <= model.aspp.dropout < 1, "model.aspp.dropout", model.aspp.dropout, "0 <= dropout < 1")
    if model.decoder is not None:
        # The ranges of the paper's decoder ablations (Tables 1 and 2).
        decoder = model.decoder
        _require(isinstance(decoder.low_level_channels, int) and 8 <= decoder.low_level_channels <= 64,
                 "model.decoder.low_level_channels", decoder.low_level_channels, "an integer from 8 to 64")
        _require(isinstance(decoder.num_convs, int) and 1 <= decoder.num_convs <= 3, "model.decoder.num_convs",
                 decoder.num_convs, "1, 2, 3")
        _require(isinstance(decoder.channels, int) and decoder.channels > 0, "model.decoder.channels",
                 decoder.channels, "a positive integer")
    _require(isinstance(data.num_classes, int) and data.num_classes >= 2, "data.num_classes", data.num_classes,
             "an integer >= 2")
    _require(len(data.class_names) == data.num_classes, "data.class_names", list(data.class_names),
             f"exactly data.num_classes={data.num_classes} names")
    _require(isinstance(data.ignore_index, int) and not 0 <= data.ignore_index < data.num_classes,
             "data.ignore_index", data.ignore_index, f"an integer outside 0..{data.num_classes - 1}")
    crop = _as_list(data.crop_size)
    # 4096: past any benchmark's image side; a bigger crop is all padding and a typo's memory bill
    _require(len(crop) in (1, 2) and all(isinstance(c, int) and 16 <= c <= MAX_CROP for c in crop), "data.crop_size",
             data.crop_size, f"an integer from 16 to {MAX_CROP} or [height, width] of them")
    # Image pooling normalises one value per channel and image: training needs two images a step.
    _require(isinstance(data.batch_size, int) and data.batch_size >= 2, "data.batch_size", data.batch_size,
             "an integer >= 2 (batch norm needs two images per step)")
    _require(isinstance(data.num_workers, int) and data.num_workers >= 0, "data.num_workers",
             data.num_workers, "an integer >= 0")
    validate_run_length(cfg)
    clip = cfg.trainer.get("gradient_clip_val")
    _require(clip is None or isinstance(clip, int | float) and clip > 0, "trainer.gradient_clip_val", clip,
             "null (off) or a number > 0")
    _require(cfg.trainer.get("gradient_clip_algorithm", "norm") in ("norm", "value"),
             "trainer.gradient_clip_algorithm", cfg.trainer.get("gradient_clip_algorithm"), "norm, value")
    prefetch = data.get("prefetch_factor", 2)
    _require(isinstance(prefetch, int) and prefetch >= 1, "data.prefetch_factor", prefetch, "an integer >= 1")
    colors = data.get("colors")
    _require(colors is None or len(colors) == data.num_classes and all(
        len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c) for c in colors), "data.colors",
        colors if colors is None else [list(c) for c in colors],
        f"null (the VOC colour map) or {data.num_classes} [r, g, b] triples of 0..255")
    for key in ("mean", "std"):
        value = data[key]
        _require(value is None or len(_as_list(value)) == 3 and all(isinstance(v, (int, float)) for v in value)
                 and (key == "mean" or all(v > 0 for v in value)), f"data.{key}", value,
                 "null (the encoder's pretrained statistics) or three numbers" + (" > 0" if key == "std" else ""))
    _require(optim.lr > 0, "optim.lr", optim.lr, "a number > 0")
    if "momentum" in optim:
        _require(0 <= optim.momentum < 1, "optim.momentum", optim.momentum, "0 <= momentum < 1")
    _require(optim.weight_decay >= 0, "optim.weight_decay", optim.weight_decay, "a number >= 0")
    _require(optim.poly_power >= 0, "optim.poly_power", optim.poly_power, "a number >= 0")
    validate_eval(evaluation)
    trainer = cfg.trainer
    on_cpu = trainer.accelerator == "cpu" or trainer.accelerator == "auto" and not torch.cuda.is_available()
    if trainer.get("sync_batchnorm") and on_cpu:
        raise ConfigError("trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm runs on CUDA only); "
                          "set trainer.sync_batchnorm=false to train with CPU processes")


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_run_length(cfg: DictConfig) -> None:
    """The seed, how long training runs and how often it checkpoints: values that would fail
    mid-run or train nothing at all."""
    _require(_whole(cfg.seed) and 0 <= cfg.seed < 2**32, "seed", cfg.seed, "an integer from 0 to 2**32 - 1")
    trainer = cfg.trainer
    _require(_whole(trainer.max_steps) and (trainer.max_steps == -1 or trainer.max_steps >= 1), "trainer.max_steps",
             trainer.max_steps, "-1 (no step limit) or an integer >= 1")
    epochs = trainer.get("max_epochs")
    _require(epochs is None or _whole(epochs) and (epochs == -1 or epochs >= 1), "trainer.max_epochs", epochs,
             "-1 or null (no epoch limit) or an integer >= 1")
    _require(not (epochs in (None, -1) and trainer.max_steps == -1), "trainer.max_epochs", epochs,
             "an integer >= 1 while trainer.max_steps=-1 (a run needs one limit)")
    for key in ("limit_train_batches", "limit_val_batches"):
        limit = trainer.get(key)
        _require(limit is None or isinstance(limit, int | float) and not isinstance(limit, bool) and limit > 0
                 and (_whole(limit) or limit <= 1), f"trainer.{key}", limit,
                 "a fraction in (0, 1], or a number of batches >= 1")
    every = OmegaConf.select(cfg, "callbacks.last_checkpoint.every_n_train_steps")
    _require(_whole(every) and every >= 1, "callbacks.last_checkpoint.every_n_train_steps", every,
             "an integer >= 1 (last.ckpt is also written at each epoch's end)")


def default_class_names(cfg: DictConfig, dataset_defaults: DictConfig | None) -> str | None:
    """With data.num_classes changed and data.class_names left at the dataset config's own list,
    the classes are named class_0 .. class_{N-1}; returns the line that says so. A list given
    any other way is the user's, and a wrong length stays an error (validate)."""
    data = cfg.data
    defaults = None if dataset_defaults is None else dataset_defaults.get("class_names")
    if not _whole(data.num_classes) or data.num_classes < 2 or defaults is None:
        return None
    if len(data.class_names) == data.num_classes or list(data.class_names) != list(defaults):
        return None
    data.class_names = [f"class_{i}" for i in range(data.num_classes)]
    return (f"note: data.num_classes={data.num_classes} with the dataset's {len(defaults)} default class names: "
            f"the classes are named class_0 .. class_{data.num_classes - 1}; name them with data.class_names=[...]")


def _side_pair(value, minimum: int) -> bool:
    sides = _as_list(value)
    return len(sides) in (1, 2) and all(isinstance(v, int) and v >= minimum for v in sides)


def _two(value) -> list:
    """An int or a one- or two-item list as [height, width]."""
    sides = _as_list(value)
    return sides * 2 if len(sides) == 1 else sides


def validate_eval(evaluation: DictConfig) -> None:
    """The eval group, shared by train.py, eval.py and predict.py."""
    _require(evaluation.output_stride in (None, *OUTPUT_STRIDES), "eval.output_stride", evaluation.output_stride,
             "null, 8, 16, 32")
    scales = _as_list(evaluation.scales)
    _require(len(scales) > 0 and all(isinstance(s, (int, float)) and s > 0 for s in scales), "eval.scales", scales,
             "a list of numbers > 0")
    _require(isinstance(evaluation.flip, bool), "eval.flip", evaluation.flip, "true, false")
    _require(evaluation.mode in EVAL_MODES, "eval.mode", evaluation.mode, ", ".join(EVAL_MODES))
    _require(evaluation.window is None or _side_pair(evaluation.window, 16), "eval.window", evaluation.window,
             "null (data.crop_size), an integer >= 16 or [height, width]")
    _require(evaluation.stride is None or _side_pair(evaluation.stride, 1), "eval.stride", evaluation.stride,
             "null (two thirds of the window), an integer >= 1 or [height, width]")
    if evaluation.window is not None and evaluation.stride is not None:
        _require(all(s <= w for s, w in zip(_two(evaluation.stride), _two(evaluation.window), strict=True)),
                 "eval.stride",
                 evaluation.stride, f"at most eval.window={evaluation.window}, or windows leave gaps")


def validate_export(cfg: DictConfig) -> None:
    """tools/export.py's own keys (conf/export.yaml)."""
    _require(cfg.output_stride in (None, *OUTPUT_STRIDES), "output_stride", cfg.output_stride,
             "null (the checkpoint's eval or training output stride), 8, 16, 32")
    for key in ("example_size", "check_size"):
        sides = _as_list(cfg[key])
        _require(len(sides) == 2 and all(_whole(v) and v >= 16 for v in sides), key, cfg[key],
                 "[height, width], integers >= 16")
    _require(isinstance(cfg.tolerance, int | float) and cfg.tolerance > 0, "tolerance", cfg.tolerance, "a number > 0")


def _short(values) -> str:
    return "encoder's" if values is None else "[" + ", ".join(f"{v:.3g}" for v in values) + "]"


def describe(cfg: DictConfig, choices: dict | None = None) -> str:
    """A one-screen summary of what will run."""
    model, data, optim, trainer = cfg.model, cfg.data, cfg.optim, cfg.trainer
    lines = []
    if choices:
        picked = [f"{g}={choices[g]}" for g in ("data", "backbone", "os", "decoder", "aug", "optim", "loss",
                                                "trainer", "logger", "experiment", "debug") if choices.get(g)]
        lines.append("groups   " + " ".join(picked))
    aspp = model.aspp
    lines.append(f"model    {model.backbone.name} (weights: {model.backbone.weights or 'random init'})  "
                 f"OS {model.output_stride}  "
                 f"ASPP {aspp.channels}ch rates {list(aspp.rates)} separable={aspp.separable} "
                 f"pooling={aspp.image_pooling} dropout={aspp.dropout}")
    if model.decoder is None:
        lines.append("decoder  none (DeepLabV3: 1x1 logits on ASPP, bilinear upsampling)")
    else:
        dec = model.decoder
        lines.append(f"decoder  DeepLabV3+: low-level {dec.low_level_channels}ch, {dec.num_convs} x 3x3 conv "
                     f"{dec.channels}ch, separable={dec.separable}")
    lines.append(f"data     {data.root}  {data.num_classes} classes  crop {data.crop_size}  batch {data.batch_size}"
                 f"  workers {data.num_workers}  splits {data.train_split}/{data.val_split}")
    lines.append(f"         normalise mean {_short(data.mean)} std {_short(data.std)}")
    momentum = f" momentum {optim.momentum}" if "momentum" in optim else ""
    lines.append(f"optim    {optim.optimizer._target_.rsplit('.', 1)[-1]} lr {optim.lr}{momentum} weight_decay "
                 f"{optim.weight_decay} poly {optim.poly_power}  loss {cfg.loss._target_.rsplit('.', 1)[-1]}")
    lines.append(f"trainer  max_epochs {trainer.max_epochs} max_steps {trainer.max_steps} precision {trainer.precision}"
                 f"  accelerator {trainer.accelerator} x{trainer.devices}  seed {cfg.seed}")
    lines.append(f"eval     output_stride {cfg.eval.output_stride or model.output_stride}  scales "
                 f"{list(cfg.eval.scales)}  flip {cfg.eval.flip}  mode {cfg.eval.mode}")
    lines.append(f"output   {cfg.paths.output_dir}")
    return "\n".join(lines)
