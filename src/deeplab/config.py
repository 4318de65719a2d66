"""Checks that turn a bad command line or config value into one line naming the key, the value
and what is allowed, before any work starts."""

import difflib
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

OUTPUT_STRIDES = (8, 16, 32)
BACKBONE_WEIGHTS = (None, "imagenet")
EVAL_MODES = ("whole", "slide")
MAX_CROP = 4096


class ConfigError(ValueError):
    """A configuration value that cannot work; the message is one line."""


class JobFailed(RuntimeError):
    """A job of a multirun that stopped on a user error: the sweep records it and goes on."""


@contextmanager
def one_line_errors(*error_types: type[Exception]) -> Iterator[None]:
    """What the entry points do with a user's mistake: `error: ...` on stderr and exit status 2.
    Inside a multirun the job fails instead (JobFailed), so the other jobs of the sweep still run."""
    try:
        yield
    except MissingMandatoryValue as err:
        _stop(f"{err.full_key} is required; give it on the command line: {err.full_key}=VALUE")
    except (ConfigError, *error_types) as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise  # the whole traceback, as Hydra's own switch promises
        _stop(_last_line(str(err)), getattr(err, "exit_code", 2))


def _last_line(message: str) -> str:
    """A DataLoader worker re-raises its error with the worker's traceback in the message; the
    error's own words are its last line, after the type's name."""
    if "Original Traceback" not in message:
        return message
    return message.strip().splitlines()[-1].split(": ", 1)[-1]


def _stop(message: str, exit_code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    if _in_multirun():
        raise JobFailed(message) from None
    sys.exit(exit_code)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _suggest(value: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _sort_options(options: Iterable[str]) -> list[str]:
    return sorted(options, key=lambda o: (0, int(o), "") if o.isdigit() else (1, 0, o))


def group_options(conf_dir: Path, group: str) -> list[str]:
    return _sort_options(p.stem for p in (conf_dir / group).glob("*.yaml"))


def _flat_keys(node, prefix: str = "") -> list[str]:
    keys = []
    if isinstance(node, DictConfig):
        for key in node.keys():
            full = f"{prefix}{key}"
            keys.append(full)
            keys.extend(_flat_keys(node._get_node(key), f"{full}."))
    return keys


def _values(override) -> list:
    return list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]


def check_command_line(args: Sequence[str], conf_dir: str | Path, config_name: str = "train") -> list[str]:
    """Checks every `group=option` and `key=value` override against the config tree, so that a
    typo gets a one-line answer with the allowed options instead of Hydra's multi-line error.

    Returns the arguments to hand to Hydra: numeric group options (`os=8`) quoted, because Hydra
    only takes strings as group options."""
    conf_dir = Path(conf_dir).resolve()
    groups = {p.name for p in conf_dir.iterdir() if p.is_dir()}
    parser = OverridesParser.create()
    result, group_overrides, key_overrides = [], [], []
    for arg in args:
        result.append(arg)
        if "=" not in arg or arg.startswith("-"):
            continue
        override = parser.parse_override(arg)
        key = override.key_or_group
        if key.split(".")[0].split("/")[0] == "hydra" or override.type != OverrideType.CHANGE:
            continue  # Hydra's own settings and explicit +add / ~delete are Hydra's to check
        if key not in groups:
            key_overrides.append(key)
            continue
        raw = _values(override)
        if None in raw:
            raise ConfigError(f"{key}=null is not allowed; to drop the {key} group write ~{key}")
        values = [str(v) for v in raw]
        allowed = group_options(conf_dir, key)
        for value in values:
            if value not in allowed:
                raise ConfigError(f"{key}={value} is not allowed; allowed: {', '.join(allowed)}"
                                  f"{_suggest(value, allowed)}")
        if any(not isinstance(v, str) for v in raw):
            result[-1] = f"{key}=" + ",".join(f"'{v}'" for v in values)
        group_overrides.append(f"{key}='{values[0]}'")
    if key_overrides:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            known = _flat_keys(compose(config_name, overrides=group_overrides))
        for key in key_overrides:
            if key not in known:
                raise ConfigError(f"{key} is not a config key{_suggest(key, known)}; "
                                  f"add a new key with +{key}=VALUE")
    return result


def check_output_dir(args: Sequence[str], conf_dir: str | Path, config_name: str = "train") -> None:
    """The run (or sweep) directory can be made: its nearest existing parent is a folder this user
    can write in. Said before Hydra starts, which would otherwise fail with a traceback."""
    import tempfile

    parser = OverridesParser.create()
    # a sweep's values do not compose into one config; where the sweep dir goes does not depend on them
    single = [a for a in args if not a.startswith("-") and not parser.parse_override(a).is_sweep_override()]
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        cfg = compose(config_name, overrides=single, return_hydra_config=True)
    cfg.paths.root_dir = os.getcwd()  # what ${hydra:runtime.cwd} will be
    key = "hydra.sweep.dir" if "-m" in args or "--multirun" in args else "hydra.run.dir"
    try:
        target = Path(str(OmegaConf.select(cfg, key)))
    except Exception:  # an interpolation only Hydra's run can resolve: leave the check to it
        return
    parent = target
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    reason = None if parent.is_dir() else "is a file, not a folder"
    if reason is None:
        try:
            tempfile.TemporaryDirectory(dir=parent).cleanup()
        except OSError as err:
            reason = f"is not writable ({err.strerror or err})"
    if reason:
        raise ConfigError(f"{key}={target} cannot be created: {parent} {reason}; choose another with "
                          "paths.log_dir=PATH")


def _require(ok: bool, key: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value} is not allowed; allowed: {allowed}")


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
