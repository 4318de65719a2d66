"""Config sections to plain PyTorch objects: the model, its input normalisation, the inference
settings and the device (no Lightning)."""

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from deeplab.errors import ConfigError
from deeplab.inference.prepare import inference_precision, prepare_for_inference
from deeplab.inference.task import MULTICLASS, Task, task_of
from deeplab.model import DeepLab, input_statistics


def build_model(model: DictConfig, num_classes: int, in_channels: int = 3, task: Task = MULTICLASS) -> DeepLab:
    """The network with the task's output channels (one for binary: background is 1 - p)."""
    decoder = OmegaConf.to_container(model.decoder, resolve=True) if model.decoder is not None else None
    aspp = OmegaConf.to_container(model.aspp, resolve=True)  # the rates follow the output stride
    try:
        return DeepLab(num_classes=task.out_channels(num_classes), backbone=model.backbone.name,
                       weights=model.backbone.weights, output_stride=model.output_stride, aspp=aspp, decoder=decoder,
                       multi_grid=model.backbone.get("multi_grid"), in_channels=in_channels)
    except ValueError as err:  # the model package names the offending argument
        raise ConfigError(str(err)) from err


def build_network(config: DictConfig) -> DeepLab:
    """The network a run config describes: its model section, classes, bands and task."""
    return build_model(config.model, config.data.num_classes, config.data.get("in_channels", 3), task_of(config))


def evaluation_task(config: DictConfig, evaluation: DictConfig) -> Task:
    """The task a checkpoint reader (eval.py, predict.py, Segmenter) infers with: the run's, at
    eval.threshold when given; a threshold for a multiclass model is refused, not ignored."""
    task, threshold = task_of(config), evaluation.get("threshold")
    if task.name == "multiclass":
        for key, value in (("threshold", threshold), ("threshold_sweep", evaluation.get("threshold_sweep"))):
            if value not in (None, False):
                raise ConfigError(f"eval.{key}={str(value).lower()} is not allowed with a multiclass model; allowed: "
                                  f"{'null' if key == 'threshold' else 'false'} (a pixel takes its most probable "
                                  "class; thresholds are task=binary's and multilabel's)")
        return task
    return task_of(config, threshold)


def resolve_normalisation(cfg: DictConfig) -> list[str]:
    """Fills a null data.mean / data.std with the statistics the encoder's weights were trained
    with, so the stored config says exactly what the run used. Returns notes for the user when an
    explicit choice differs from the weights it will feed."""
    try:
        mean, std = input_statistics(cfg.model.backbone.name)
    except ValueError as err:  # an unknown encoder name, said in one line by the model package
        raise ConfigError(str(err)) from err
    notes = []
    if cfg.data.get("in_channels", 3) != 3:  # multi-band statistics are the user's (validate requires them)
        return notes
    for key, expected in (("mean", mean), ("std", std)):
        if cfg.data[key] is None:
            cfg.data[key] = [float(v) for v in expected]
        elif cfg.model.backbone.weights is not None and not _close(cfg.data[key], expected):
            notes.append(f"note: data.{key}={list(cfg.data[key])} differs from the {list(expected)} that the "
                         f"{cfg.model.backbone.name} weights were trained with; null follows the weights")
    return notes


def _close(a, b, tol: float = 1e-6) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def _pair(value) -> tuple[int, int]:
    sides = [int(value)] if isinstance(value, int) else [int(v) for v in value]
    return (sides[0], sides[-1])


def inference_settings(evaluation: DictConfig, crop_size, task: Task = MULTICLASS) -> dict:
    """The eval group as predict_probs arguments; a null window is the run's crop size, a null
    stride two thirds of the window; the sigmoid of a binary or multilabel task."""
    window = _pair(evaluation.window if evaluation.window is not None else crop_size)
    stride = _pair(evaluation.stride) if evaluation.stride is not None else tuple(max(1, 2 * w // 3) for w in window)
    return {"scales": [float(s) for s in evaluation.scales], "flip": bool(evaluation.flip), "mode": evaluation.mode,
            "window": list(window), "stride": list(stride),
            **({"activation": task.activation} if task.activation != "softmax" else {})}


def inference_model(model: nn.Module, evaluation: DictConfig, device: torch.device) -> tuple[nn.Module, str]:
    """The model as eval.py and predict.py run it: eval.fast's prepared copy on the device, and
    eval.precision resolved for that device (fp32 or bf16). An exported graph (deploy.backends)
    runs as it is, in fp32, on the CPU of its runtime."""
    if getattr(model, "exported", False):
        return model, "fp32"
    prepared = prepare_for_inference(model.to(device), evaluation.get("fast", True))
    return prepared, inference_precision(evaluation.get("precision", "fp32"), device)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"device={name} is not allowed; allowed: auto, cpu, cuda, cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} is not available: this machine has no CUDA device; use device=cpu")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device={name} is not allowed; allowed: auto, cpu, cuda, cuda:N")
    return device
