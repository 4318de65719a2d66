"""INT8 by post-training static quantisation with onnxruntime's tools: QDQ nodes, per-channel
weights, MinMax activation ranges calibrated on real training images as evaluation reads them
(normalised, padded to the network's grid). Nodes named in `keep_fp32` stay FP32; `auto` keeps
the convolutions whose own INT8 output is noisiest (qdq_loss_debug's signal-to-noise ratio)."""

import importlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from deeplab.builders.data import evaluation_loader
from deeplab.errors import UserError
from deeplab.inference.metrics import SegmentationMetrics
from deeplab.inference.multiscale import grid_size, predict_classes, predict_probs
from deeplab.inference.pixels import normaliser
from deeplab.inference.task import Task

# auto: a convolution whose INT8 output is below this signal-to-noise ratio (dB) stays FP32. At
# 8 bits a well-scaled tensor reaches about 30-40 dB; the outliers are the layers INT8 hurts.
AUTO_MIN_SQNR_DB = 20.0
AUTO_MAX_KEPT = 8  # at most this many: each one kept costs its INT8 speed


class DeployError(UserError):
    """A deployment format cannot be written or checked; the message is one line."""


def require(module: str, fmt: str):
    """The optional package a format needs, or one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise DeployError(f"format={fmt} needs {module.split('.')[0]}, which is not installed; install it with "
                          "pip install 'deeplab[deploy]'") from err


def split_images(data: DictConfig, split: str, count: int, output_stride: int,
                 seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Up to `count` images of the split, drawn at random (seeded: the same ones each time), as
    evaluation feeds them: (normalised image 1 x C x H x W, mask)."""
    dataset = evaluation_loader(data, split).dataset
    chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
    normalise = normaliser(data)
    for index in sorted(chosen.tolist()):
        sample = dataset[index]
        yield normalise(sample["image"][None]), sample["mask"][None]


def padded(image: torch.Tensor, output_stride: int) -> np.ndarray:
    height, width = image.shape[2:]
    grid_height, grid_width = grid_size((height, width), output_stride)
    return F.pad(image, (0, grid_width - width, 0, grid_height - height)).numpy()


class Feeds:
    """onnxruntime's CalibrationDataReader protocol over a list of inputs, read a range at a time
    (set_range: its CalibStridedMinMax, which merges the ranges of each stride's activations)."""

    def __init__(self, images: list[np.ndarray]):
        self.images = images
        self.set_range(0, len(images))

    def __len__(self) -> int:
        return len(self.images)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.pending = iter(self.images[start_index:end_index])

    def get_next(self) -> dict | None:
        image = next(self.pending, None)
        return None if image is None else {"image": image}


def _reader(images: list[np.ndarray]):
    """Feeds as onnxruntime's own reader type (which adds iteration), imported only when used."""
    quantization = require("onnxruntime.quantization", "onnx-int8")
    return type("CalibrationFeeds", (Feeds, quantization.CalibrationDataReader), {})(images)


def stride(count: int, most: int = 4) -> int:
    """Images whose activations are held at once while calibrating: it must divide their number."""
    return max(d for d in range(1, most + 1) if count % d == 0)


def quantize(fp32: Path, int8: Path, calibration: list[np.ndarray], keep_fp32: list[str],
             ranges: Path | None = None) -> None:
    """The INT8 graph of `fp32` (QDQ, per-channel weights, unsigned activations), with the nodes of
    `keep_fp32` left in FP32; `ranges` caches the calibrated ranges for a second quantisation."""
    quantization = require("onnxruntime.quantization", "onnx-int8")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        reader = _reader(calibration)
        quantization.quantize_static(
            str(prepared), str(int8), reader, quant_format=quantization.QuantFormat.QDQ, per_channel=True,
            activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
            nodes_to_exclude=list(keep_fp32), calibrate_method=quantization.CalibrationMethod.MinMax,
            calibration_cache_path=ranges,
            # the activations of a few images at a time, their ranges merged: memory bounded at 513 x 513
            extra_options={"CalibStridedMinMax": stride(len(calibration))})


def convolution_sqnr(fp32: Path, int8: Path, images: list[np.ndarray]) -> dict[str, float]:
    """Each convolution's INT8 output signal-to-noise ratio (dB), the quantisation of that tensor
    alone as onnxruntime's qdq_loss_debug measures it, the lowest first."""
    debug = require("onnxruntime.quantization.qdq_loss_debug", "onnx-int8")
    onnx = require("onnx", "onnx-int8")
    with tempfile.TemporaryDirectory() as scratch:
        activations = []
        for graph in (int8, fp32):
            augmented = Path(scratch) / f"{graph.stem}_outputs.onnx"
            debug.modify_model_output_intermediate_tensors(str(graph), str(augmented))
            activations.append(debug.collect_activations(str(augmented), _reader(images)))
    matched = debug.create_activation_matching(*activations)
    errors = debug.compute_activation_error(matched)
    # Only a convolution whose own output is quantised has a ratio: where a ReLU follows, onnxruntime
    # folds it into the quantisation, and the ratio of that pair would measure the ReLU's clipping.
    convolution = {output: node.name for node in onnx.load(str(fp32)).graph.node if node.op_type == "Conv"
                   for output in node.output}
    ratios = {convolution[name]: float(error["qdq_err"]) for name, error in errors.items()
              if name in convolution and "qdq_err" in error}
    return dict(sorted(ratios.items(), key=lambda item: item[1]))


def noisiest(ratios: dict[str, float]) -> list[str]:
    """keep_fp32=auto: the convolutions below AUTO_MIN_SQNR_DB, at most AUTO_MAX_KEPT, the noisiest first."""
    return [name for name, ratio in ratios.items() if ratio < AUTO_MIN_SQNR_DB][:AUTO_MAX_KEPT]


def compare(reference: nn.Module, converted: nn.Module, images, num_classes: int, ignore_index: int,
            task: Task) -> dict:
    """Both models on the same images: the share of labelled pixels (multilabel: label values)
    where their masks agree, and each one's mIoU (not for multilabel)."""
    settings = {"activation": task.activation} if task.activation != "softmax" else {}
    metrics = None if task.name == "multilabel" else \
        [SegmentationMetrics(num_classes, ignore_index=ignore_index) for _ in range(2)]
    agree = labelled = count = 0
    for image, mask in images:
        masks = [predict_classes(predict_probs(m, image, **settings), task) for m in (reference, converted)]
        valid = mask != ignore_index
        agree += int(((masks[0] == masks[1]) & valid).sum())
        labelled += int(valid.sum())
        count += 1
        for metric, predicted in zip(metrics or [], masks, strict=False):
            metric.update(predicted, mask.long())
    result = {"images": count, "agreement": agree / max(labelled, 1)}
    if metrics:
        result["mIoU_reference"], result["mIoU_converted"] = (m.compute()["mIoU"].item() for m in metrics)
        result["mIoU_drop_points"] = 100 * (result["mIoU_reference"] - result["mIoU_converted"])
    return result
