"""Checks that turn a bad command line into one line naming the key, the value and what is
allowed, before Hydra starts: config groups and their options, config keys, the arguments of
each node's `_target_`, the run directory."""

import difflib
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from omegaconf import DictConfig, ListConfig, OmegaConf

from deeplab.errors import ConfigError
from deeplab.schema import default_class_names, validate


def _suggest(value: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _sort_options(options: Iterable[str]) -> list[str]:
    return sorted(options, key=lambda o: (0, int(o), "") if o.isdigit() else (1, 0, o))


def group_options(conf_dir: Path, group: str, extra_dir: Path | None = None) -> list[str]:
    dirs = [Path(conf_dir)] + ([Path(extra_dir)] if extra_dir else [])
    return _sort_options({p.stem for d in dirs for p in (d / group).glob("*.yaml")})


def _flat_keys(node, prefix: str = "", skip: tuple = ()) -> list[str]:
    keys = []
    if isinstance(node, DictConfig):
        for key in (k for k in node.keys() if k not in skip):
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
    _last_output_dir.clear()  # a new command: its run directory is worked out anew
    line = CommandLine.parse(args, config_name)
    conf_dir = Path(conf_dir).resolve()
    groups = {p.name for d in (conf_dir, line.config_dir) if d for p in d.iterdir() if p.is_dir()}
    own_groups = config_groups(conf_dir, line.config_name, groups)
    parser = OverridesParser.create()
    result, group_overrides, key_overrides = [], [], []
    for arg in map(_expand_home, line.overrides):
        override = _parse(parser, arg)
        key = override.key_or_group
        meant = _meant_for_checkpoint(arg, key, override, line.config_name, own_groups, groups)
        if meant != arg:
            arg, override = meant, _parse(parser, meant)
            key = override.key_or_group
        result.append(arg)
        if key.split(".")[0].split("/")[0] == "hydra" or override.type == OverrideType.DEL:
            _check_launcher(key, override, line)
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
    cfg = None
    if key_overrides:
        with composing(conf_dir, line.config_dir):
            cfg = compose(line.config_name, overrides=group_overrides, return_hydra_config=line.runs_job)
        known = _flat_keys(cfg, skip=("hydra",))
        for index, key, override in key_overrides:
            taken = _check_target_argument(cfg, key, override, known)
            if taken and key not in known and override.type == OverrideType.CHANGE:
                result[index] = f"++{result[index]}"  # an argument of the node's _target_, set by name
            elif key not in known and override.type == OverrideType.CHANGE:
                raise ConfigError(f"{key} is not a config key{_suggest(key, known)}"
                                  + ("" if line.config_name in READS_CHECKPOINT else
                                     f"; add a new key with +{key}=VALUE"))
            elif key not in known and line.config_name in READS_CHECKPOINT:
                raise ConfigError(f"{key} is not a key that {SCRIPTS[line.config_name]} reads{_suggest(key, known)}; "
                                  "it would be ignored")
    checked = replace(line, overrides=result)
    if checked.runs_job:
        if cfg is not None:
            _reuse_for_output_dir(checked, conf_dir, cfg, groups)
        check_output_dir(checked, conf_dir)
    return checked.args


# The configs that take the model from a checkpoint, and the key that sets their output stride.
READS_CHECKPOINT = {"evaluate": "eval.output_stride", "predict": "eval.output_stride", "export": "output_stride",
                    "inspect_model": None}
SCRIPTS = {"evaluate": "eval.py", "predict": "predict.py", "export": "tools/export.py",
           "inspect_model": "tools/inspect_model.py", "train": "train.py"}


def config_groups(conf_dir: Path, config_name: str, groups: set[str]) -> set[str]:
    """The groups a primary config composes: those its defaults list names, and all of them where
    it includes the train config."""
    path = conf_dir / f"{config_name}.yaml"
    if not path.is_file():
        return groups
    own = set()
    for entry in OmegaConf.load(path).get("defaults") or []:
        if isinstance(entry, str):
            if entry != "_self_":
                return groups  # another primary config (train): its groups too
            continue
        for name in entry:
            own.add(str(name).split()[-1].split("/")[0])
    return own


def _parse(parser: OverridesParser, arg: str):
    from hydra.errors import HydraException

    try:
        return parser.parse_override(arg)
    except HydraException as err:  # the grammar's syntax errors, and OverrideParseException
        reason = str(err).strip().splitlines()[0]
        if "=~" in arg or "=[~" in arg:
            hint = "write the full path, or quote it: " + arg.replace("=", "='", 1) + "'"
        elif not arg.isascii():
            hint = "Hydra reads unquoted values as ASCII only; quote them, e.g. " + _quoted_example(arg)
        else:
            hint = "quote a value that holds special characters: key='value'"
        raise ConfigError(f"{arg} is not a valid override ({reason}); {hint}") from None


def _quoted_example(arg: str) -> str:
    key, _, value = arg.partition("=")
    if value.startswith("[") and value.endswith("]"):
        items = [item.strip() for item in value[1:-1].split(",")]
        return f"{key}=[" + ",".join(f"'{i}'" if not i.isascii() else i for i in items) + "]"
    return f"{key}='{value}'"


def _expand_home(arg: str) -> str:
    """`key=~/x`: the shell leaves a ~ after `=` as it is, and Hydra's grammar refuses it; the
    user means their home folder, in every path key. Quoted values (`key='~/x'`) likewise. The
    expanded path is quoted for Hydra (a home folder may hold spaces)."""
    key, eq, value = arg.partition("=")
    if not eq or key.startswith("-"):
        return arg
    bare = value.strip("'\"")
    if (bare == "~" or bare.startswith("~/")) and "'" not in bare:
        return f"{key}='{os.path.expanduser(bare)}'"
    return arg


def _meant_for_checkpoint(arg: str, key: str, override, config_name: str, own: set[str], groups: set[str]) -> str:
    """eval.py, predict.py, export and inspect_model take the model from the checkpoint: an
    architecture group cannot change there (one line), and `os=8` means evaluating at output
    stride 8, which their own key does."""
    if config_name not in READS_CHECKPOINT or key in own or override.type == OverrideType.DEL:
        return arg
    script, stride_key = SCRIPTS[config_name], READS_CHECKPOINT[config_name]
    top = key.split(".")[0]
    if key == "os" and stride_key is not None:
        from deeplab.log import LOG

        LOG.info(f"{arg}: {script} reads the model from its checkpoint; evaluating at {stride_key}="
                 f"{override.value()}")
        return f"{stride_key}={override.value()}"
    if key == "model.output_stride" and stride_key is not None:
        raise ConfigError(f"{key} is not a key of {script}: the checkpoint fixes the model; for inference at "
                          f"another output stride give {stride_key}={override.value()}")
    if key in groups or top in ("model", "backbone", "decoder", "os"):
        what = "model and its training settings" if top not in ("model", "backbone", "decoder", "os") else "model"
        raise ConfigError(f"{arg}: {script} takes the {what} from ckpt_path's checkpoint, so {key} cannot change "
                          "here" + (f"; for inference at another output stride give {stride_key}=8 or 16"
                                    if stride_key and top in ("model", "os") else ""))
    return arg


def _check_launcher(key: str, override, line: "CommandLine") -> None:
    """A launcher override only acts in a multirun; SLURM's needs sbatch where the sweep starts."""
    import shutil

    if key != "hydra/launcher" or override.type == OverrideType.DEL:
        return
    value = str(override.value())
    if not line.multirun and line.runs_job:
        raise ConfigError(f"hydra/launcher={value} acts on a multirun only: add -m (a single run always runs here)")
    if "slurm" in value and line.runs_job and shutil.which("sbatch") is None:
        raise ConfigError(f"hydra/launcher={value} submits jobs with SLURM's sbatch, which is not on this machine's "
                          "PATH; start the sweep on the cluster's login node, or leave hydra/launcher as it is")


def _reuse_for_output_dir(line: CommandLine, conf_dir: Path, cfg: DictConfig, groups: set[str]) -> None:
    """The config composed for the key checks, with the command line's values applied as Hydra
    applies them, is the one output_dir would compose again: one composition fewer a command.
    Left to output_dir where Hydra would refuse an override (it says so itself)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    parser = OverridesParser.create()
    values = [o for o in map(parser.parse_override, line.overrides)
              if not o.is_sweep_override() and "/" not in o.key_or_group and o.key_or_group not in groups]
    try:
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
    except Exception:  # noqa: BLE001  (Hydra's own composition will report it)
        return
    _last_output_dir.update(asked=_asked(line, conf_dir), answer=_run_dir_of(line, cfg))


def _check_target_argument(cfg: DictConfig, key: str, override, known: list[str]) -> bool:
    """For `NODE.NAME=VALUE` where NODE is built from a `_target_` (trainer, logger.csv,
    optim.optimizer): whether NAME is an argument of that callable, its value checked against the
    argument's annotation. A name it does not take gets the suggestions of both the config and
    the signature."""
    from deeplab.cli.target_args import accepts, describe, takes_any_keyword, target_signature

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
        if value in RESOLVED_BEFORE_BUILD.get(key, ()):
            continue
        if not accepts(parameter.annotation, value):
            extra = "".join(f", {v}" for v in RESOLVED_BEFORE_BUILD.get(key, ()))
            raise ConfigError(f"{key}={value} is not allowed; allowed: {describe(parameter.annotation)}{extra}")
    return True


# Values the framework replaces before the target is built (training/precision.py for this one).
RESOLVED_BEFORE_BUILD = {"trainer.precision": ("auto",)}


def output_dir(line: CommandLine, conf_dir: str | Path) -> tuple[str, Path | None, DictConfig]:
    """The run directory (or sweep directory, with -m) this command line will write to, its
    config key, and the composed config; None where only Hydra's run can resolve the directory.
    The answer is kept for the rest of the command: train.py asks twice (writable, and fresh)."""
    asked = _asked(line, conf_dir)
    if _last_output_dir.get("asked") != asked:
        _last_output_dir.update(asked=asked, answer=_output_dir(line, conf_dir))
    return _last_output_dir["answer"]


_last_output_dir: dict = {}


def _asked(line: CommandLine, conf_dir: str | Path) -> tuple:
    return (tuple(line.overrides), line.config_name, line.config_dir, line.multirun, str(conf_dir), os.getcwd())


def _output_dir(line: CommandLine, conf_dir: str | Path) -> tuple[str, Path | None, DictConfig]:
    parser = OverridesParser.create()
    # a sweep's values do not compose into one config; where the sweep dir goes does not depend on them
    single = [a for a in line.overrides if not parser.parse_override(a).is_sweep_override()]
    with composing(conf_dir, line.config_dir):
        cfg = compose(line.config_name, overrides=single, return_hydra_config=True)
    return _run_dir_of(line, cfg)


def _run_dir_of(line: CommandLine, cfg: DictConfig) -> tuple[str, Path | None, DictConfig]:
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


