"""Reading a checkpoint written by train.py: its stored config and the model it holds.

Loading uses `weights_only=True`: a checkpoint is tensors and plain containers, and a file that
would run code when unpickled is refused instead of trusted."""

import copy
import pickle
import re
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from deeplab.builders.model import build_network
from deeplab.builders.pretrained import exported_format, is_pretrained, load_pretrained
from deeplab.errors import CheckpointError
from deeplab.model import DeepLab

CONFIG_KEY = "deeplab_config"  # the resolved run config, stored in every checkpoint by train.py


def check_file(path: str | Path, key: str = "ckpt_path") -> Path:
    """A checkpoint file, a model folder (builders.pretrained) or an export folder."""
    path = Path(path)
    if not path.is_file() and not is_pretrained(path) and not exported_format(path):
        raise CheckpointError(f"{key}={path} does not exist" if not path.exists() else f"{key}={path} is not a file")
    return path


def load_file(path: str | Path, key: str = "ckpt_path"):
    """What a file saved with torch.save holds, loaded safely; `key` names the setting in messages."""
    path = check_file(path, key)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found:  # a pickle that names a function or class to call: the way code runs on load
            raise CheckpointError(f"{key}={path} is refused: loading it would call {found.group(1)}, and only "
                                  "tensors and plain containers are loaded (weights_only=True)") from err
        raise CheckpointError(f"{key}={path} is not a PyTorch checkpoint (it does not unpickle)") from err
    except Exception as err:  # truncated or empty files, zip errors, other formats
        reason = " ".join(str(err).split()).split(". ")[0][:160] or "the file ends early"
        raise CheckpointError(f"{key}={path} is not a PyTorch checkpoint ({type(err).__name__}: {reason})") \
            from err


def load_checkpoint(path: str | Path) -> dict:
    checkpoint = load_file(path)
    if not isinstance(checkpoint, dict) or CONFIG_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(f"ckpt_path={path} is not a checkpoint written by train.py (it has no "
                              f"{CONFIG_KEY!r} and 'state_dict')")
    return checkpoint


def model_from_checkpoint(path: str | Path) -> tuple[DeepLab, DictConfig]:
    """The trained network (in eval mode) and the resolved config of the run that wrote it; from a
    checkpoint file or a model folder written by tools/export.py format=pretrained."""
    if is_pretrained(path):
        return load_pretrained(path)
    checkpoint = load_checkpoint(path)
    config = OmegaConf.create(checkpoint[CONFIG_KEY])
    model = build_network(config)
    state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(f"ckpt_path={path}: its weights do not fit the model its config describes "
                              f"({first})") from err
    return model.eval(), config


# What makes a network another one: a resume with any of these changed would store weights trained
# as one network under the config of another.
ARCHITECTURE = ("task.name", "data.num_classes", "data.in_channels", "model.backbone.name", "model.output_stride",
                "model.aspp", "model.decoder")


# Architecture keys added after checkpoints were written, with the value that builds what those
# checkpoints were trained as: a stored config without one meant this.
ADDED_LATER = {"data.in_channels": 3, "model.aspp.depthwise_bn_relu": True, "model.decoder.depthwise_bn_relu": True,
               "model.aspp.post_conv": False}


def _with_added_keys(config: DictConfig) -> DictConfig:
    """A copy of a config with the architecture keys it predates set to what it meant."""
    config = copy.deepcopy(config)
    if config.get("task") is None:  # before tasks, every run was multiclass
        with open_dict(config):
            config.task = {"name": "multiclass"}
    for key, value in ADDED_LATER.items():
        parent, _, name = key.rpartition(".")
        node = OmegaConf.select(config, parent)
        if isinstance(node, DictConfig) and node.get(name) is None:
            with open_dict(node):
                node[name] = value
    return config


def check_same_network(checkpoint: dict, cfg: DictConfig, path: str | Path) -> None:
    """The config `cfg` builds the network the checkpoint was trained as, key by key (one line
    naming the first that differs)."""
    stored, cfg = _with_added_keys(OmegaConf.create(checkpoint[CONFIG_KEY])), _with_added_keys(cfg)
    for key in ARCHITECTURE:
        theirs, ours = _plain(OmegaConf.select(stored, key)), _plain(OmegaConf.select(cfg, key))
        if theirs == ours:
            continue
        if key == "data.num_classes":
            raise CheckpointError(f"data.num_classes={ours} but ckpt_path={path} was trained with {theirs} classes")
        raise CheckpointError(f"ckpt_path={path} holds another architecture ({key}={theirs}); this run builds "
                              f"{key}={ours}; a resume continues the same network (evaluate at another output "
                              "stride with eval.py eval.output_stride=8; start from these weights with "
                              "model.init_from=PATH)")


def _plain(node):
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig | ListConfig) else node


def check_resumable(path: str | Path, cfg: DictConfig) -> None:
    """The checkpoint loads safely and holds this run's model: same classes, same architecture,
    said in one line before Lightning would fail on a long state-dict error."""
    checkpoint = load_checkpoint(path)
    stored = OmegaConf.create(checkpoint[CONFIG_KEY])
    check_same_network(checkpoint, cfg, path)
    theirs = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    try:  # load_state_dict maps the keys of checkpoints written before the model's parts had names
        build_network(cfg).load_state_dict(theirs)
    except RuntimeError as err:
        raise CheckpointError(f"ckpt_path={path} holds another architecture (backbone "
                              f"{stored.model.backbone.name}, output stride {stored.model.output_stride}); this "
                              f"run builds backbone {cfg.model.backbone.name}, output stride "
                              f"{cfg.model.output_stride}") from err


def run_checkpoint(value: str) -> Path | None:
    """`ckpt_path=RUN_DIR` for eval.py, predict.py, export and inspect_model: the run's
    checkpoints/best.ckpt, else its last.ckpt; None when the value is no folder (a file's path)."""
    folder = Path(value).expanduser()
    if not folder.is_dir() or is_pretrained(folder) or exported_format(folder):  # read as they are
        return None
    found = next((folder / "checkpoints" / name for name in ("best.ckpt", "last.ckpt")
                  if (folder / "checkpoints" / name).is_file()), None)
    if found is None:
        raise CheckpointError(f"ckpt_path={value} is a folder without checkpoints/best.ckpt or last.ckpt; give a "
                              "run directory written by train.py or a .ckpt file")
    return found
