"""Checks that turn a bad command line or config value into one line naming the key, the value
and what is allowed, before any work starts."""

import difflib
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from hydra import compose
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


def group_options(conf_dir: Path, group: str, extra_dir: Path | None = None) -> list[str]:
    dirs = [Path(conf_dir)] + ([Path(extra_dir)] if extra_dir else [])
    return _sort_options({p.stem for d in dirs for p in (d / group).glob("*.yaml")})


def _flat_keys(node, prefix: str = "") -> list[str]:
    keys = []
    if isinstance(node, DictConfig):
        for key in node.keys():
            full = f"{prefix}{key}"
            keys.append(full)
            keys.extend(_flat_keys(node._get_node(key), f"{full}."))
    elif isinstance(node, ListConfig):  # list items by index: finetune.stages.0.start_epoch
        for index in range(len(node)):
            full = f"{prefix}{index}"
            keys.append(full)
            keys.extend(_flat_keys(node._get_node(index), f"{full}."))
    return keys


def _values(override) -> list:
    return list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]


@dataclass
class CommandLine:
    """A command line as Hydra's own parser splits it: its flags (`--cfg job`, `-m`,
    `--config-dir D`, ...), in any order among the overrides, and the overrides, which are all
    that the checks below read."""

    flags: list[str]
    overrides: list[str]
    config_name: str
    config_dir: Path | None  # --config-dir: searched before conf/, as Hydra does
    multirun: bool
    runs_job: bool  # False for --cfg, --info, --help, --hydra-help, --version, --shell-completion

    @property
    def args(self) -> list[str]:
        """For Hydra, whose parser wants the flags before the overrides."""
        return [*self.flags, *self.overrides]

    @classmethod
    def parse(cls, args: Sequence[str], config_name: str) -> "CommandLine":
        from hydra._internal.utils import get_args_parser

        if "--version" in args:  # Hydra prints its version and stops
            return cls(list(args), [], config_name, None, False, False)
        parser = get_args_parser()

        def refuse(message: str):  # instead of argparse's usage lines and exit
            raise ConfigError(f"{message}; see --help")

        parser.error = refuse
        parsed = parser.parse_intermixed_args(list(args))
        if parsed.config_dir is not None and not Path(parsed.config_dir).is_dir():
            raise ConfigError(f"--config-dir {parsed.config_dir} is not a folder")
        modes = [flag for flag, on in (("--run", parsed.run), ("--multirun", parsed.multirun), ("--cfg", parsed.cfg),
                                       ("--info", parsed.info), ("--shell-completion", parsed.shell_completion)) if on]
        if len(modes) > 1:
            raise ConfigError(f"{' and '.join(modes)} cannot be given together; Hydra takes one of --run, --multirun, "
                              "--cfg, --info and --shell-completion")
        flags, pending = [], list(parsed.overrides)
        for arg in args:
            if pending and arg == pending[0]:
                pending.pop(0)
            else:
                flags.append(arg)
        shows = parsed.cfg or parsed.info or parsed.help or parsed.hydra_help or parsed.shell_completion
        return cls(flags, list(parsed.overrides), parsed.config_name or config_name,
                   Path(parsed.config_dir).resolve() if parsed.config_dir else None, parsed.multirun, not shows)


@contextmanager
def composing(conf_dir: str | Path, config_dir: Path | None = None) -> Iterator[None]:
    """Hydra's compose API over conf/, with --config-dir's folder searched first, as Hydra's
    own main searches it."""
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    backup = get_gh_backup()
    search_path = create_config_search_path(str(Path(conf_dir).resolve()))
    if config_dir is not None:
        search_path.prepend(provider="command-line", path=f"file://{config_dir}",
                            anchor=SearchPathQuery(provider="schema"))
    try:
        version.setbase("1.3")
        GlobalHydra.instance().clear()
        Hydra.create_main_hydra2(task_name="app", config_search_path=search_path)
        yield
    finally:
        restore_gh_from_backup(backup)


def check_command_line(args: Sequence[str], conf_dir: str | Path, config_name: str = "train") -> list[str]:
    """Checks every `group=option` and `key=value` override against the config tree, so that a
    typo gets a one-line answer with the allowed options instead of Hydra's multi-line error;
    Hydra's flags pass through untouched. A command that will run a job also has its run (or
    sweep) directory checked.

    Returns the arguments to hand to Hydra: numeric group options (`os=8`) quoted, because Hydra
    only takes strings as group options."""
    line = CommandLine.parse(args, config_name)
    conf_dir = Path(conf_dir).resolve()
    groups = {p.name for d in (conf_dir, line.config_dir) if d for p in d.iterdir() if p.is_dir()}
    parser = OverridesParser.create()
    result, group_overrides, key_overrides = [], [], []
    for arg in line.overrides:
        result.append(arg)
        override = parser.parse_override(arg)
        key = override.key_or_group
        if key.split(".")[0].split("/")[0] == "hydra" or override.type == OverrideType.DEL:
            continue  # Hydra's own settings and ~delete are Hydra's to check
        if key not in groups or override.type != OverrideType.CHANGE:
            key_overrides.append((len(result) - 1, key, override))
            continue
        raw = _values(override)
        if None in raw:
            raise ConfigError(f"{key}=null is not allowed; to drop the {key} group write ~{key}")
        values = [str(v) for v in raw]
        allowed = group_options(conf_dir, key, line.config_dir)
        for value in values:
            if value not in allowed:
                raise ConfigError(f"{key}={value} is not allowed; allowed: {', '.join(allowed)}"
                                  f"{_suggest(value, allowed)}")
        if any(not isinstance(v, str) for v in raw):
            result[-1] = f"{key}=" + ",".join(f"'{v}'" for v in values)
        group_overrides.append(f"{key}='{values[0]}'")
    if key_overrides:
        with composing(conf_dir, line.config_dir):
            cfg = compose(line.config_name, overrides=group_overrides)
        known = _flat_keys(cfg)
        for index, key, override in key_overrides:
            taken = _check_target_argument(cfg, key, override, known)
            if taken and key not in known and override.type == OverrideType.CHANGE:
                result[index] = f"++{result[index]}"  # an argument of the node's _target_, set by name
            elif key not in known and override.type == OverrideType.CHANGE:
                raise ConfigError(f"{key} is not a config key{_suggest(key, known)}; "
                                  f"add a new key with +{key}=VALUE")
    checked = replace(line, overrides=result)
    if checked.runs_job:
        check_output_dir(checked, conf_dir)
    return checked.args


def _check_target_argument(cfg: DictConfig, key: str, override, known: list[str]) -> bool:
    """For `NODE.NAME=VALUE` where NODE is built from a `_target_` (trainer, logger.csv,
    optim.optimizer): whether NAME is an argument of that callable, its value checked against the
    argument's annotation. A name it does not take gets the suggestions of both the config and
    the signature."""
    from deeplab.target_args import accepts, describe, takes_any_keyword, target_signature

    node, _, name = key.rpartition(".")
    signature = target_signature(OmegaConf.select(cfg, f"{node}._target_")) if node else None
    if signature is None:
        return False
    parameter = signature.parameters.get(name)
    if parameter is None:
        if key in known or takes_any_keyword(signature):
            return key not in known
        names = known + [f"{node}.{n}" for n in signature.parameters if n not in ("self", "args", "kwargs")]
        target = OmegaConf.select(cfg, f"{node}._target_")
        raise ConfigError(f"{key} is not a config key nor an argument of {target}{_suggest(key, names)}")
    for value in _values(override):
        if not accepts(parameter.annotation, value):
            raise ConfigError(f"{key}={value} is not allowed; allowed: {describe(parameter.annotation)}")
    return True


def output_dir(line: CommandLine, conf_dir: str | Path) -> tuple[str, Path | None, DictConfig]:
    """The run directory (or sweep directory, with -m) this command line will write to, its
    config key, and the composed config; None where only Hydra's run can resolve the directory."""
    parser = OverridesParser.create()
    # a sweep's values do not compose into one config; where the sweep dir goes does not depend on them
    single = [a for a in line.overrides if not parser.parse_override(a).is_sweep_override()]
    with composing(conf_dir, line.config_dir):
        cfg = compose(line.config_name, overrides=single, return_hydra_config=True)
    if "paths" in cfg:
        cfg.paths.root_dir = os.getcwd()  # what ${hydra:runtime.cwd} will be
    key = "hydra.sweep.dir" if line.multirun else "hydra.run.dir"
    try:
        return key, Path(str(OmegaConf.select(cfg, key))), cfg
    except Exception:  # an interpolation only Hydra's run can resolve: leave the check to it
        return key, None, cfg


def check_output_dir(line: CommandLine, conf_dir: str | Path) -> None:
    """The run (or sweep) directory can be made: its nearest existing parent is a folder this user
    can write in. Said before Hydra starts, which would otherwise fail with a traceback."""
    import tempfile

    key, target, _ = output_dir(line, conf_dir)
    if target is None:
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
    last = cfg.get("callbacks", {}).get("last_checkpoint")
    if last is not None and "every_n_train_steps" in last:
        every = last.every_n_train_steps
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


def check_train_config(cfg: DictConfig, conf_dir: str | Path) -> list[str]:
    """What every entry point that composes the train config runs before anything else: default
    class names where the user changed only their number, then every value check. Returns notes
    to print; raises ConfigError in one line."""
    from hydra.core.hydra_config import HydraConfig

    choice = HydraConfig.get().runtime.choices.get("data") if HydraConfig.initialized() else None
    source = Path(conf_dir) / "data" / f"{choice}.yaml"
    note = default_class_names(cfg, OmegaConf.load(source) if choice and source.is_file() else None)
    validate(cfg)
    return [note] if note else []


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
