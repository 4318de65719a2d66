"""A self-contained model folder: `model.safetensors` (the weights), `config.json` (the
architecture, the classes, and the run's resolved config), `preprocessing.json` (what an image
goes through before the network) and a `README.md` model card. Nothing else is needed to predict,
and the layout is the one huggingface_hub's ModelHubMixin reads and writes (config.json beside
model.safetensors), so `huggingface_hub.upload_folder(repo_id=..., folder_path=DIR)` publishes it."""

import json
import shlex
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file as load_tensors
from safetensors.torch import save_model

from deeplab.builders.model import build_network
from deeplab.data.preview import class_colours
from deeplab.errors import CheckpointError
from deeplab.model import DeepLab

FILES = ("model.safetensors", "config.json", "preprocessing.json", "README.md")
FORMAT = "deeplab-pretrained/1"


# The folders tools/export.py writes for a deployment format: config.json's "format" -> the format.
EXPORTED = {f"deeplab-{name}/1": name for name in ("onnx", "onnx-int8", "openvino", "openvino-int8", "torchscript")}


def exported_format(path: str | Path) -> str | None:
    """The deployment format of an export folder (tools/export.py), None for anything else."""
    path = Path(path)
    if not (path.is_dir() and (path / "config.json").is_file()):
        return None
    try:
        return EXPORTED.get(json.loads((path / "config.json").read_text()).get("format"))
    except (json.JSONDecodeError, AttributeError):
        return None


def is_pretrained(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def save_pretrained(model: DeepLab, config: DictConfig, folder: str | Path, run_dir: Path | None = None) -> Path:
    """Writes the folder (new, or empty); `run_dir`, where the checkpoint came from, gives the card
    its metrics and training command."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise CheckpointError(f"output={folder} exists and is not an empty folder; choose a new one")
    folder.mkdir(parents=True, exist_ok=True)
    write_description(config, folder)
    save_model(model, str(folder / "model.safetensors"))
    (folder / "README.md").write_text(model_card(config, run_dir))
    return folder


def write_description(config: DictConfig, folder: Path, fmt: str = FORMAT, output_stride: int | None = None) -> None:
    """config.json and preprocessing.json: what a folder's model is and what its images go through;
    `fmt` names the folder's kind (a model folder, or an exported graph's: tools/export.py)."""
    data = config.data
    run = OmegaConf.to_container(config, resolve=True)
    (folder / "config.json").write_text(json.dumps({
        "format": fmt, "model": run["model"], "num_classes": data.num_classes,
        "class_names": list(data.class_names),
        "colors": class_colours(data.get("colors"), data.num_classes).tolist(),  # the palette predict.py paints
        "in_channels": data.get("in_channels", 3), "run": run}, indent=2) + "\n")
    (folder / "preprocessing.json").write_text(json.dumps({
        "mean": run["data"].get("mean"), "std": run["data"].get("std"),
        "max_pixel_value": data.get("max_pixel_value", 255), "image_size": run["data"].get("image_size"),
        "in_channels": data.get("in_channels", 3), "output_stride": output_stride or config.model.output_stride,
        "padding": "each side padded to k * output_stride + 1 (the official evaluation's grid), "
                   "the logits cropped back to the image"}, indent=2) + "\n")


def load_pretrained(folder: str | Path) -> tuple[DeepLab, DictConfig]:
    """The network (in eval mode) and the resolved run config, as model_from_checkpoint gives them."""
    folder = Path(folder)
    described = json.loads((folder / "config.json").read_text())
    if described.get("format") != FORMAT:
        raise CheckpointError(f"{folder}/config.json is not a model folder written by this project (format "
                              f"{described.get('format')!r}, expected {FORMAT!r})")
    config = OmegaConf.create(described["run"])
    model = build_network(config)
    try:
        model.load_state_dict(load_tensors(str(folder / "model.safetensors")))
    except RuntimeError as err:
        raise CheckpointError(f"{folder}/model.safetensors does not fit the model its config.json describes "
                              f"({str(err).splitlines()[0]})") from err
    return model.eval(), config


def state_dict(folder: str | Path) -> tuple[dict, str]:
    """The folder's tensors and what it holds, for model.init_from."""
    model = json.loads((Path(folder) / "config.json").read_text())["model"]
    return load_tensors(str(Path(folder) / "model.safetensors")), \
        f"backbone {model['backbone']['name']}, output stride {model['output_stride']}"


def model_card(config: DictConfig, run_dir: Path | None) -> str:
    """The README.md of the folder: what the model is, what it was trained on, how well it did, and
    the command that trained it (from the run directory, where there is one)."""
    summary, overrides = {}, None
    if run_dir is not None and (run_dir / "summary.json").is_file():
        summary = json.loads((run_dir / "summary.json").read_text())
    if run_dir is not None and (run_dir / ".hydra" / "overrides.yaml").is_file():
        overrides = list(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml") or [])
    model, data = config.model, config.data
    decoder = "DeepLabV3+ (48-channel low-level projection)" if model.get("decoder") else "DeepLabV3 (no decoder)"
    lines = ["---", "library_name: deeplab", "tags: [semantic-segmentation, deeplabv3plus]", "---", "",
             f"# DeepLab: {model.backbone.name}, output stride {model.output_stride}", "",
             f"- Architecture: {decoder}, ASPP rates {list(model.aspp.rates)}, backbone `{model.backbone.name}`",
             f"- Classes ({data.num_classes}): {', '.join(str(n) for n in data.class_names)}",
             f"- Data: `{data.dataset._target_}` at `{data.get('root')}`, trained on split `{data.train_split}`"]
    if summary:
        lines.append(f"- Validation: mIoU {_percent(summary.get('val/mIoU_best'))} (best), after "
                     f"{summary.get('epochs')} epochs, {summary.get('global_step')} steps")
        for key, value in (summary.get("per_class_iou") or {}).items():
            lines.append(f"  - {key}: IoU {_percent(value)}")
        for deviation in summary.get("deviations") or []:
            lines.append(f"- Departs from the paper's protocol: {deviation}")
    if overrides is not None:
        lines += ["", "Trained with:", "", "```bash", shlex.join(["python", "train.py", *map(str, overrides)]), "```"]
    lines += ["", "Use:", "", "```python", "import deeplab", "", "segmenter = deeplab.Segmenter.from_pretrained(DIR)",
              "mask = segmenter.predict('photo.jpg')", "```", ""]
    return "\n".join(lines)


def _percent(value) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, int | float) else "not recorded"
