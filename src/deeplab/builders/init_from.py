"""model.init_from: start a new run from a trained model's weights, where they fit.

Transfer learning, unlike resuming (ckpt_path): the new run keeps its own classes, optimizer and
schedule; every tensor whose name and shape match is copied, the rest keep their fresh
initialisation (typically the classifier when the class count differs)."""

from pathlib import Path

from torch import nn

from deeplab.builders.checkpoint import CONFIG_KEY, load_file
from deeplab.builders.pretrained import is_pretrained
from deeplab.builders.pretrained import state_dict as pretrained_state
from deeplab.errors import CheckpointError
from deeplab.model.layers import with_current_names

KEY = "model.init_from"
SHOWN = 6  # re-initialised tensors named on the summary line (one line, whatever their number)


def source_file(path: str | Path) -> Path:
    """A checkpoint file, or the best (else last) checkpoint of a run directory."""
    path = Path(path)
    if path.is_dir():
        found = next((p for p in (path / "checkpoints" / "best.ckpt", path / "checkpoints" / "last.ckpt")
                      if p.is_file()), None)
        if found is None:
            raise CheckpointError(f"{KEY}={path} is a folder without checkpoints/best.ckpt or checkpoints/last.ckpt; "
                                  "give a run directory, a .ckpt file or a state_dict saved with torch.save")
        return found
    return path


def read_weights(path: str | Path) -> tuple[dict, str]:
    """The model tensors a file holds (a train.py checkpoint, a Lightning checkpoint, a plain
    state_dict, or a model folder of tools/export.py format=pretrained), without the
    LightningModule's `model.` prefix, and what the file says it is."""
    if is_pretrained(path):
        return pretrained_state(path)
    file = source_file(path)
    content = load_file(file, KEY)
    described = ""
    if isinstance(content, dict) and CONFIG_KEY in content:
        model = content[CONFIG_KEY]["model"]
        described = f"backbone {model['backbone']['name']}, output stride {model['output_stride']}"
    state = content.get("state_dict", content) if isinstance(content, dict) else None
    if not isinstance(state, dict) or not state or not all(hasattr(v, "shape") for v in state.values()):
        raise CheckpointError(f"{KEY}={file} holds no state dict (a dict of tensors, or a checkpoint with "
                              "'state_dict')")
    if all(k.startswith("model.") for k in state) or CONFIG_KEY in content:
        state = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    return state, described


def init_from(model: nn.Module, path: str | Path) -> tuple[str, list[str]]:
    """Copies the matching tensors of `path` into `model`; returns the summary line and the name
    of every re-initialised tensor with its shape. Refuses when fewer than half of the model's
    tensors match: that is another architecture, and training it would be training from scratch."""
    theirs, described = read_weights(path)
    theirs = with_current_names(model, theirs)
    own = model.state_dict()
    matched = {k: v for k, v in theirs.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if 2 * len(matched) < len(own):
        holds = f" (it holds {described})" if described else ""
        raise CheckpointError(f"{KEY}={path}: only {len(matched)} of this model's {len(own)} tensors match it by name "
                              f"and shape{holds}; it is another architecture than model.backbone.name="
                              f"{getattr(model, 'backbone_name', '?')}; give a checkpoint of the same backbone")
    model.load_state_dict(matched, strict=False)
    fresh = []
    for key, tensor in own.items():
        if key in matched:
            continue
        was = f" (was {list(theirs[key].shape)})" if key in theirs else " (not in the source)"
        fresh.append(f"{key} {list(tensor.shape)}{was}")
    named = ", ".join(fresh[:SHOWN]) + (f", and {len(fresh) - SHOWN} more" if len(fresh) > SHOWN else "")
    line = f"init_from: {len(matched)} tensors loaded, {len(fresh)} re-initialised" + (f": {named}" if fresh else "")
    return line, fresh
