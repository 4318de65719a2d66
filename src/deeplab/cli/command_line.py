"""The command line before Hydra reads it: what Hydra's grammar cannot say for the user. A `~`
after `=` is the home folder; `NODE.NAME=VALUE`, where NODE is built from a `_target_`, sets an
argument of that callable by name (`trainer.limit_train_batches=2`: Hydra needs `++` for a key
its YAML lacks). Read from the YAML files alone: the config is composed once, by Hydra.
`unknown_key` words Hydra's refusal of a key its config lacks."""

import os
import sys
from functools import cache
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from omegaconf import OmegaConf

from deeplab.cli import CONF_DIR
from deeplab.cli.entry import suggest
from deeplab.errors import ConfigError

# The commands that take the model from a checkpoint, and the keys that set the model.
READS_CHECKPOINT = {"evaluate": "eval.py", "predict": "predict.py", "export": "tools/export.py",
                    "inspect_model": "tools/inspect_model.py"}
ARCHITECTURE = ("model", "backbone", "decoder", "os")


def prepare(args: list[str], conf_dir: Path, config_name: str) -> list[str]:
    """The arguments for Hydra: flags as given, overrides rewritten as the module says."""
    dirs = config_dirs(args, conf_dir)
    parser = OverridesParser.create()
    flags, result = [], []
    for index, arg in enumerate(args):
        after_flag = index > 0 and args[index - 1].startswith("-") and "=" not in args[index - 1]
        if arg.startswith("-") or after_flag and "=" not in arg and not arg.startswith("~"):
            flags.append(arg)  # Hydra's flags and their values, which its parser wants before the overrides
            continue
        if "=" not in arg:
            result.append(arg)
            continue
        arg = _expand_home(arg)
        override = _parse(parser, arg)
        key = override.key_or_group
        if key.split("/")[0].split(".")[0] == "hydra":
            pass  # Hydra's own settings are Hydra's to check
        elif override.type == OverrideType.CHANGE and any((Path(d) / key).is_dir() for d in dirs):
            if override.value() is None:
                raise ConfigError(f"{key}=null is not allowed; to drop the {key} group write ~{key}")
        elif override.type == OverrideType.CHANGE and config_name not in READS_CHECKPOINT and \
                _is_target_argument(key, dirs):
            arg = f"++{arg}"  # an argument of the node's _target_, by name; its value is checked before the run
        result.append(arg)
    return flags + result


def _flag_value(args: list[str], *flags: str) -> str | None:
    for index, arg in enumerate(args):
        if arg in flags and index + 1 < len(args):
            return args[index + 1]
        for flag in flags:
            if arg.startswith(f"{flag}="):
                return arg.split("=", 1)[1]
    return None


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
    user means their home folder. The expanded path is quoted for Hydra (it may hold spaces)."""
    key, _, value = arg.partition("=")
    bare = value.strip("'\"")
    if (bare == "~" or bare.startswith("~/")) and "'" not in bare:
        return f"{key}='{os.path.expanduser(bare)}'"
    return arg


def config_dirs(args: list[str], conf_dir: Path) -> tuple[Path, ...]:
    config_dir = _flag_value(args, "--config-dir", "-cd")
    return (conf_dir, Path(config_dir)) if config_dir else (conf_dir,)


@cache
def config_keys(dirs: tuple[Path, ...]) -> frozenset[str]:
    """Every key path the YAML files give, placed by package: the candidates of a suggestion."""
    return frozenset(key for _, _, tree in _yaml_trees(dirs) for key, _ in key_paths(tree))


def key_paths(tree, prefix: str = ""):
    """(key path, value) of every key in a YAML tree, depth first."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{prefix}.{key}".strip(".")
            yield path, value
            yield from key_paths(value, path)


def _yaml_trees(dirs: tuple[Path, ...]):
    """(file, package, content) of each YAML file: the content placed under its package."""
    for folder in dirs:
        for path in sorted(Path(folder).rglob("*.yaml")):
            relative = path.relative_to(folder)
            first = path.read_text().split("\n", 1)[0]
            package = first.split("@package", 1)[1].strip() if "@package" in first else ".".join(relative.parts[:-1])
            package = "" if package == "_global_" or len(relative.parts) == 1 else package.replace("_global_.", "")
            try:
                tree = OmegaConf.to_container(OmegaConf.load(path))
            except Exception:  # noqa: BLE001  (a file Hydra reads later reports its own error)
                continue
            if isinstance(tree, dict):
                tree.pop("defaults", None)  # Hydra's list of configs, no key of the config
            for part in reversed([p for p in package.split(".") if p]):
                tree = {part: tree}
            yield path, package, tree


@cache
def _target_nodes(dirs: tuple[Path, ...]) -> dict[str, set[str]]:
    """Every node with a `_target_` in these folders' YAML files, placed by each file's package
    (its group's path, or `# @package`), with the keys the files give it."""
    nodes: dict[str, set[str]] = {}
    for _, _, tree in _yaml_trees(dirs):
        for node, value in key_paths(tree):
            if isinstance(value, dict) and "_target_" in value:
                nodes.setdefault(node, set()).update(value)
    return nodes


def _is_target_argument(key: str, dirs: tuple[Path, ...]) -> bool:
    """NODE.NAME where NODE is built from a `_target_` and no YAML file gives it NAME."""
    node, _, name = key.rpartition(".")
    keys = _target_nodes(dirs).get(node)
    return keys is not None and name not in keys and not name.startswith("_")


def unknown_key(key: str, config_name: str | None) -> str:
    """The line for a key the composed config lacks: for a command that reads a checkpoint, a key
    of training is refused as such; otherwise the closest key of the YAML files."""
    dirs = config_dirs(sys.argv[1:], CONF_DIR)
    known, top, script = config_keys(dirs), key.split(".")[0], READS_CHECKPOINT.get(config_name)
    if script and (top in ARCHITECTURE or key in known or any((d / key).is_dir() for d in dirs)):
        what = "model" if top in ARCHITECTURE else "model and its training settings"
        hint = "; for inference at another output stride give os=8 or os=16" \
            if top == "model" and config_name != "inspect_model" else ""
        return f"{key}: {script} takes the {what} from ckpt_path's checkpoint, so {key} cannot change here{hint}"
    return f"{key} is not a config key{suggest(key, known)}; add a new key with +{key}=VALUE"
