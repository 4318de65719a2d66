"""What is checked on the config Hydra composed, before Hydra makes the run's directory: the
arguments given to a node's `_target_`, the run directory, and (for the commands that read the
train config) every value rule, once. Hydra calls `BeforeRun` (deeplab/conf/hydra/default.yaml); the
command being run (`Command`, set by `launch`) says what else its run directory needs."""

import importlib
import inspect
import shutil
import tempfile
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from deeplab.allowed import accepts, allowed
from deeplab.cli import CONF_DIR
from deeplab.cli.command_line import READS_CHECKPOINT, key_paths, unknown_key
from deeplab.cli.entry import Carried, suggest
from deeplab.errors import ConfigError, required
from deeplab.schema import default_class_names, validate


@dataclass
class Command:
    """One user command: its config, whether that is the train config (validated here), and
    what its run directory needs before Hydra writes there: `before_run(cfg, key, target, multirun)`."""

    config_name: str
    train_config: bool = False
    before_run: Callable[[DictConfig, str, Path | None, bool], None] | None = None
    notes: list[str] = field(default_factory=list)  # said once the job's console is set up
    run_dir: Path | None = None  # the job's directory, once Hydra has made it
    result: object = None  # what the task returned (train.py: val/mIoU_best)


COMMAND: ContextVar[Command | None] = ContextVar("deeplab_command", default=None)


class BeforeRun(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        try:
            before_run(config, multirun=False)
        except Exception as err:
            raise Carried(err) from err

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            before_run(config, multirun=True)
        except Exception as err:
            raise Carried(err) from err


def before_run(cfg: DictConfig, multirun: bool) -> None:
    command = COMMAND.get()
    if command is None:  # Hydra started by other code (a user's own @hydra.main over these configs)
        return
    HydraConfig.instance().set_config(cfg)  # the run directory may name ${hydra:...}
    check_target_arguments(cfg)
    check_overrides(cfg, command.config_name, multirun)
    missing = None if multirun else next(_unset(cfg), None)  # a sweep may set it per job
    if missing:  # eval.py without ckpt_path: said before Hydra makes a run directory for it
        raise required(missing)
    key, target = run_dir(cfg, multirun)
    check_writable(key, target)
    if command.before_run is not None:  # first: a checkpoint of another network is said as such
        command.before_run(cfg, key, target, multirun)
    if command.train_config and not multirun:  # a sweep's jobs are checked each with its own values
        command.notes = check_train_config(cfg)


def _overrides(cfg: DictConfig, which: str):
    """The command line's overrides as Hydra parsed them: `task` (the config's) or `hydra` (its own)."""
    parser = OverridesParser.create()
    given = OmegaConf.select(cfg, f"hydra.overrides.{which}")
    return [parser.parse_override(text) for text in OmegaConf.to_container(given)] if given is not None else []


def check_overrides(cfg: DictConfig, config_name: str, multirun: bool) -> None:
    """What Hydra takes but would not do: a launcher outside a multirun, SLURM's where sbatch is
    missing, and a new key for a command that takes its model from a checkpoint (it reads none)."""
    for override in _overrides(cfg, "hydra"):
        value = override.value()
        if override.key_or_group != "hydra/launcher" or override.is_delete():
            continue
        if not multirun:
            raise ConfigError(f"hydra/launcher={value} acts on a multirun only: add -m (a single run always runs here)")
        if "slurm" in str(value) and shutil.which("sbatch") is None:
            raise ConfigError(f"hydra/launcher={value} submits jobs with SLURM's sbatch, which is not on this "
                              "machine's PATH; start the sweep on the cluster's login node, or leave hydra/launcher as "
                              "it is")
    script = READS_CHECKPOINT.get(config_name)
    for override in _overrides(cfg, "task") if script else []:
        key = override.key_or_group
        if override.is_add():  # Hydra refuses + for a key it has: this one is new, and nothing reads it
            known = [k for k, _ in key_paths(OmegaConf.to_container(cfg)) if k != key and not k.startswith("hydra")]
            raise ConfigError(f"{key} is not a key that {script} reads{suggest(key, known)}; it would be ignored")
        if override.is_force_add() and key.split(".")[0] not in _own_top_keys(config_name):
            raise ConfigError(unknown_key(key, config_name))  # ++model.output_stride=8 sets nothing here either


def _own_top_keys(config_name: str) -> set[str]:
    """The top-level keys of a command's own config file and of the groups its defaults list names."""
    own = OmegaConf.load(CONF_DIR / f"{config_name}.yaml")
    groups = {str(next(iter(e))).split("/")[0] for e in own.get("defaults", []) if not isinstance(e, str)}
    return set(own) | groups


def _unset(node: DictConfig, prefix: str = ""):
    """Keys still at `???`, Hydra's own node apart (OmegaConf.missing_keys resolves interpolations,
    some of which only the job can)."""
    for key in node:
        path = f"{prefix}{key}"
        if path == "hydra" or OmegaConf.is_interpolation(node, key):
            continue
        if OmegaConf.is_missing(node, key):
            yield path
        elif isinstance(node[key], DictConfig):
            yield from _unset(node[key], f"{path}.")


def check_train_config(cfg: DictConfig) -> list[str]:
    """Default class names where the user changed only their number, then every value rule.
    Returns notes to print; raises ConfigError in one line."""
    choice = OmegaConf.select(cfg, "hydra.runtime.choices.data")
    if choice is None and HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("data")
    source = CONF_DIR / "data" / f"{choice}.yaml"
    note = default_class_names(cfg, OmegaConf.load(source) if choice and source.is_file() else None)
    validate(cfg)
    return [note] if note else []


def run_dir(cfg: DictConfig, multirun: bool) -> tuple[str, Path | None]:
    """The run (or, with -m, sweep) directory and its key; None where it does not resolve yet."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        return key, Path(str(OmegaConf.select(cfg, key)))
    except Exception:  # noqa: BLE001  (an interpolation only the job resolves: Hydra reports it)
        return key, None


def check_writable(key: str, target: Path | None) -> None:
    """The directory can be made: its nearest existing parent is a folder this user can write in."""
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


# Values the framework replaces before the target is built (training/precision.py for this one).
RESOLVED_BEFORE_BUILD = {"trainer.precision": ("auto",)}


def check_target_arguments(cfg: DictConfig) -> None:
    """Each command-line value under a node built from a `_target_` (the Trainer, a logger, the
    optimizer) is an argument of that callable, of a type its annotation takes."""
    for override in _overrides(cfg, "task"):  # as typed: ${...} too
        node, _, name = override.key_or_group.rpartition(".")
        target = OmegaConf.select(cfg, f"{node}._target_", throw_on_resolution_failure=False) \
            if node and "/" not in node else None
        signature = _signature(target)
        if signature is None or override.is_delete() or name.startswith("_"):  # _target_, _partial_: Hydra's
            continue
        key = f"{node}.{name}"
        parameter = signature.parameters.get(name)
        if parameter is None:
            if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()) or not (
                    override.is_force_add() or override.is_add()):
                continue  # a key the YAML has, or a callable that takes any keyword
            names = [f"{node}.{n}" for n in (*OmegaConf.select(cfg, node).keys(), *signature.parameters)
                     if n not in ("self", "args", "kwargs", name) and not str(n).startswith("_")]
            raise ConfigError(f"{key} is not a config key nor an argument of {target}{suggest(key, names)}")
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        for value in values:
            if value not in RESOLVED_BEFORE_BUILD.get(key, ()) and not accepts(parameter.annotation, value):
                extra = "".join(f", {v}" for v in RESOLVED_BEFORE_BUILD.get(key, ()))
                raise ConfigError(f"{key}={value} is not allowed; allowed: {allowed(parameter.annotation)}{extra}")


def _signature(target) -> inspect.Signature | None:
    """The signature `_target_` is called with; None when it cannot be imported or read."""
    module, _, name = str(target).rpartition(".")
    try:
        return inspect.signature(getattr(importlib.import_module(module), name)) if module else None
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
