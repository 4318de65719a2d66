"""ONNX export of a trained checkpoint, with batch, height and width left dynamic, checked
against PyTorch with onnxruntime before the file is declared good."""

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from deeplab.builders.checkpoint import model_from_checkpoint
from deeplab.builders.data import prepare_data
from deeplab.builders.pretrained import load_pretrained, save_pretrained, write_description
from deeplab.deploy import int8, openvino
from deeplab.deploy.backends import CONFIG_METADATA, GRAPHS, Graph, OnnxGraph, load_exported
from deeplab.errors import UserError
from deeplab.inference.prepare import prepare_for_inference
from deeplab.inference.task import task_of
from deeplab.schema import validate_export


class ExportError(UserError):
    """The export or its check failed; the message is one line."""


def _require_onnx():
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError as err:
        raise ExportError(f"tools/export.py needs onnx, onnxruntime and onnxscript ({err.name} is missing); "
                          "install them with pip install 'deeplab[deploy]'") from err
    return onnx, onnxruntime


class Probabilities(torch.nn.Module):
    """A binary or multilabel model as it is deployed: its sigmoid probabilities, which a user
    thresholds (the threshold is in the file's metadata)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.in_channels = getattr(model, "in_channels", 3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images).sigmoid()


def output_name(model: torch.nn.Module) -> str:
    return "probabilities" if isinstance(model, Probabilities) else "logits"


def export_onnx(model: torch.nn.Module, path: Path, example_size, opset: int, metadata: dict) -> None:
    """Traces the model at one size; the exported graph takes any batch, height and width."""
    onnx, _ = _require_onnx()
    dynamic = torch.export.Dim.DYNAMIC
    # A batch of two: torch.export fixes any dimension whose example value is 1.
    example = torch.randn(2, getattr(model, "in_channels", 3), *example_size)
    program = torch.onnx.export(model, (example,), input_names=["image"], output_names=[output_name(model)],
                                dynamic_shapes={"images": {0: dynamic, 2: dynamic, 3: dynamic}},
                                opset_version=opset, dynamo=True, verbose=False)
    program.save(str(path))
    proto = onnx.load(str(path))
    for key, value in metadata.items():  # shown by Netron under the model's properties
        proto.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(proto, str(path))
    onnx.checker.check_model(str(path), full_check=True)


def max_difference(model: torch.nn.Module, graph: Graph, sizes, seed: int = 0) -> float:
    """The largest |exported graph - PyTorch| over random inputs of the given (batch, height, width),
    each side's own output (logits, or a binary or multilabel model's probabilities)."""
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch, height, width in sizes:
        image = torch.randn(batch, getattr(model, "in_channels", 3), height, width, generator=generator)
        with torch.no_grad():
            expected = model(image).numpy()
        got = graph.raw(image)
        if got.shape != expected.shape:
            raise ExportError(f"{graph.backend} gave {output_name(model)} of shape {got.shape} for input "
                              f"{tuple(image.shape)}, PyTorch {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def alternately(models: dict, shape, repeats: int = 5) -> dict:
    """Images a second of each model on one input, run in turn (medians of `repeats`, after a
    warm-up), on this machine's CPU."""
    image = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    times = {name: [] for name in models}
    with torch.no_grad():
        for _ in range(repeats + 1):
            for name, model in models.items():
                start = time.perf_counter()
                model(image)
                times[name].append(time.perf_counter() - start)
    return {name: shape[0] / statistics.median(values[1:]) for name, values in times.items()}


def run(cfg: DictConfig) -> dict:
    validate_export(cfg)
    model, config = model_from_checkpoint(cfg.ckpt_path)
    if cfg.get("format", "onnx") == "pretrained":
        return write_pretrained(cfg, model, config)
    output_stride = cfg.output_stride or config.eval.output_stride or config.model.output_stride
    model.set_output_stride(output_stride)
    if cfg.format != "onnx":
        return write_folder(cfg, model, config, output_stride)
    path = Path(cfg.output) if cfg.output else Path(cfg.ckpt_path).with_suffix(".onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    bands, task = config.data.get("in_channels", 3), task_of(config)
    deployed = _deployed(task)
    export_onnx(deployed(prepare_for_inference(model, cfg.get("fold", True), channels_last=False)), path,
                list(cfg.example_size), cfg.opset, _metadata(config, output_stride))
    sizes = [(2, *cfg.example_size), (1, *cfg.check_size)]
    graph = OnnxGraph(path, output_stride, bands)
    difference = max_difference(deployed(model.eval()), graph, sizes)  # against the model as trained, unfolded
    operators = [node.op_type for node in _require_onnx()[0].load(str(path)).graph.node]
    result = {"onnx": str(path), "bytes": path.stat().st_size, "output_stride": output_stride,
              "checked_sizes": [list(s) for s in sizes], "max_abs_diff": difference, "tolerance": cfg.tolerance,
              "folded": bool(cfg.get("fold", True)), "nodes": len(operators),
              "batch_norm_nodes": operators.count("BatchNormalization"),
              **({"output": "probabilities", "task": task.name} if task.name != "multiclass" else {}),
              "images_per_sec": alternately({"onnxruntime": graph.raw,  # PyTorch as eval.py runs it
                                             "pytorch": deployed(prepare_for_inference(model, cfg.get("fold", True)))},
                                            (2, bands, *cfg.example_size))}
    if difference > cfg.tolerance:
        raise ExportError(f"{path}: onnxruntime and PyTorch {output_name(deployed(model))} differ by up to "
                          f"{difference:.3g}, more than tolerance={cfg.tolerance}")
    return result


def _metadata(config: DictConfig, output_stride: int) -> dict:
    """What the graph file itself says of its input and output (shown by Netron)."""
    bands, scale = config.data.get("in_channels", 3), config.data.get("max_pixel_value", 255)
    pixels = "RGB" if bands == 3 else f"{bands} bands"
    metadata = {"class_names": list(config.data.class_names), "mean": list(config.data.mean),
                "std": list(config.data.std), "input": f"{pixels} divided by {scale:g}, normalised with mean and std",
                "in_channels": bands, "max_pixel_value": scale,
                "output_stride": output_stride, "backbone": config.model.backbone.name,
                CONFIG_METADATA: OmegaConf.to_container(config, resolve=True)}  # eval.py reads the file with it
    task = task_of(config)
    if task.name != "multiclass":  # the graph gives probabilities; p > threshold is the mask
        metadata.update({"task": task.name, "threshold": task.threshold,
                         "output": "probabilities: the sigmoid of each channel (binary: the foreground's)"})
    return metadata


def _deployed(task):
    return (lambda m: m) if task.name == "multiclass" else (lambda m: Probabilities(m).eval())


INT8 = ("onnx-int8", "openvino-int8")
# What each format needs beyond PyTorch, checked before anything is written.
NEEDS = {"onnx": ("onnx", "onnxscript", "onnxruntime"), "onnx-int8": ("onnx", "onnxscript", "onnxruntime.quantization"),
         "openvino": ("onnx", "onnxscript", "openvino"), "openvino-int8": ("onnx", "onnxscript", "openvino", "nncf"),
         "torchscript": ()}


def write_folder(cfg: DictConfig, model, config: DictConfig, output_stride: int) -> dict:
    """An export folder (the graph, config.json, preprocessing.json, export.json) for an INT8,
    OpenVINO or TorchScript format. FP formats are checked to give PyTorch's logits within
    `tolerance`; every format is then run beside PyTorch on check_split's images: mask agreement,
    each mIoU, images/s."""
    fmt = cfg.format
    for module in NEEDS[fmt]:
        int8.require(module, fmt)
    ckpt = Path(cfg.ckpt_path)
    folder = Path(cfg.output) if cfg.output else ckpt.with_name(f"{ckpt.stem}_{fmt}")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ExportError(f"output={folder} exists and is not an empty folder; choose a new one")
    if cfg.keep_fp32 == "auto" and fmt == "openvino-int8":
        raise ExportError("keep_fp32=auto is measured with onnxruntime's tools: give format=onnx-int8, or name "
                          "OpenVINO operations (keep_fp32=[NAME,...]; export.json lists the convolutions)")
    data = config.data
    prepare_data(data)  # the synthetic set is written again if it went missing; real data is only read
    split = cfg.check_split or data.val_split
    checked = list(int8.split_images(data, split, cfg.check_images, output_stride, seed=1))
    folder.parent.mkdir(parents=True, exist_ok=True)
    # built and checked beside the output, then renamed: a failed or interrupted export leaves no half folder
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        result = build_folder(cfg, model, config, output_stride, staging)
        result.update({"folder": str(folder), "graph": str(folder / GRAPHS[fmt][0])})
        result.update(check_folder(cfg, model, config, output_stride, staging, checked))
        (staging / "export.json").write_text(json.dumps(result, indent=2) + "\n")
        if folder.exists():
            folder.rmdir()  # empty: checked above
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def check_folder(cfg: DictConfig, model, config: DictConfig, output_stride: int, folder: Path, checked) -> dict:
    """The export in `folder` beside PyTorch: FP formats' logits within tolerance, then every
    format's masks and mIoU on the checked images, and images/s."""
    fmt, task, data = cfg.format, task_of(config), config.data
    converted, _ = load_exported(folder)
    reference = _deployed(task)(prepare_for_inference(model.eval(), cfg.get("fold", True), channels_last=False))
    result = {}
    if fmt not in INT8:  # logits (or probabilities) within tolerance at both sizes, as format=onnx is checked
        difference = max_difference(reference, converted, [(2, *cfg.example_size), (1, *cfg.check_size)])
        result.update({"max_abs_diff": difference, "tolerance": cfg.tolerance})
        if difference > cfg.tolerance:
            raise ExportError(f"format={fmt}: the graph and PyTorch differ by up to {difference:.3g}, more than "
                              f"tolerance={cfg.tolerance}")
    pytorch = prepare_for_inference(model.eval(), cfg.get("fold", True))  # as eval.py runs it
    result.update({"check_split": cfg.check_split or data.val_split,
                   **int8.compare(pytorch, converted, checked, data.num_classes, data.ignore_index, task),
                   "images_per_sec": alternately({fmt: converted, "pytorch": pytorch},
                                                 (1, data.get("in_channels", 3), *cfg.example_size))})
    return result


def build_folder(cfg: DictConfig, model, config: DictConfig, output_stride: int, folder: Path) -> dict:
    """The format's graph and description files in `folder`, unchecked; what was done, as a dict.
    The INT8 formats calibrate on cfg.calibration_images training images."""
    fmt, data = cfg.format, config.data
    calibration = [int8.padded(image, output_stride) for image, _ in
                   int8.split_images(data, data.train_split, cfg.calibration_images, output_stride)] \
        if fmt in INT8 else []
    folder.mkdir(parents=True, exist_ok=True)
    reference = _deployed(task_of(config))(prepare_for_inference(model.eval(), cfg.get("fold", True),
                                                                 channels_last=False))
    graph, kept, ratios = folder / GRAPHS[fmt][0], list(cfg.keep_fp32) if cfg.keep_fp32 != "auto" else [], {}
    if fmt == "torchscript":
        example = torch.randn(1, data.get("in_channels", 3), *cfg.example_size)
        with torch.no_grad():
            torch.jit.save(torch.jit.trace(reference, example), str(graph))
    else:
        fp32 = folder / ("model.onnx" if fmt == "onnx" else "model_fp32.onnx")
        export_onnx(reference, fp32, list(cfg.example_size), cfg.opset, _metadata(config, output_stride))
        if fmt == "onnx-int8":
            ranges = folder / "ranges.json"
            int8.quantize(fp32, graph, calibration, kept, ranges)
            if cfg.keep_fp32 == "auto":  # measured on the all-INT8 graph, then quantised again without them
                ratios = int8.convolution_sqnr(fp32, graph, calibration[:4])
                kept = int8.noisiest(ratios)
                if kept:
                    int8.quantize(fp32, graph, calibration, kept, ranges)
            ranges.unlink(missing_ok=True)
        elif fmt == "openvino":
            openvino.convert(fp32, graph)
        elif fmt == "openvino-int8":
            openvino.quantize(fp32, graph, calibration, kept)
        if fp32 != graph:
            fp32.unlink()
    write_description(config, folder, f"deeplab-{fmt}/1", output_stride)
    result = {"format": fmt, "folder": str(folder), "graph": str(graph),
              "bytes": sum(p.stat().st_size for p in folder.iterdir()), "output_stride": output_stride}
    if fmt in INT8:
        result.update({"calibration_images": len(calibration), "calibration_split": data.train_split,
                       "kept_fp32": kept, **({"convolution_sqnr_db": ratios} if ratios else {})})
    if fmt == "openvino-int8":
        result["convolutions"] = openvino.operation_names(graph)  # the names keep_fp32 takes
    return result


def write_pretrained(cfg: DictConfig, model, config: DictConfig) -> dict:
    """format=pretrained: the model folder (builders.pretrained), read back and checked to give the
    checkpoint's logits."""
    if cfg.output_stride is not None:
        raise ExportError(f"os={cfg.output_stride} applies to format=onnx; a model folder keeps the training output "
                          "stride, and Segmenter.from_pretrained(DIR, output_stride=8) chooses one at inference")
    ckpt = Path(cfg.ckpt_path)
    folder = Path(cfg.output) if cfg.output else ckpt.with_name(f"{ckpt.stem}_pretrained")
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None
    save_pretrained(model, config, folder, run_dir)
    reloaded, _ = load_pretrained(folder)
    image = torch.randn(1, config.data.get("in_channels", 3), *cfg.check_size)
    with torch.no_grad():
        difference = (reloaded(image) - model.eval()(image)).abs().max().item()
    if difference > 0:
        raise ExportError(f"{folder}: the reloaded model's logits differ from the checkpoint's by {difference:.3g}")
    return {"pretrained": str(folder), "files": sorted(p.name for p in folder.iterdir()),
            "bytes": sum(p.stat().st_size for p in folder.iterdir()), "max_abs_diff": difference}


def main(cfg: DictConfig) -> None:
    """tools/export.py's task: the file and the check's figures, as a line and as JSON."""
    result = run(cfg)
    if "folder" in result:
        speed, fmt = result["images_per_sec"], result["format"]
        made = f"calibrated on {result['calibration_images']} {result['calibration_split']} images, " \
            f"{len(result['kept_fp32'])} nodes kept FP32" if "calibration_images" in result else \
            f"within {result['max_abs_diff']:.2e} of PyTorch (tolerance {result['tolerance']})"
        miou = f", mIoU {100 * result['mIoU_reference']:.2f} -> {100 * result['mIoU_converted']:.2f}" \
            if "mIoU_reference" in result else ""
        print(f"wrote {result['folder']} ({fmt}, {result['bytes'] / 1e6:.1f} MB, {made}); on {result['images']} "
              f"{result['check_split']} images its masks agree with PyTorch's on {100 * result['agreement']:.2f}% of "
              f"pixels{miou}; {speed[fmt]:.2f} images/s against PyTorch's {speed['pytorch']:.2f}")
        print(json.dumps(result))
        return
    if "pretrained" in result:
        print(f"wrote {result['pretrained']} ({', '.join(result['files'])}; {result['bytes'] / 1e6:.1f} MB); read "
              "back, it gives the checkpoint's logits exactly")
        print(json.dumps(result))
        return
    print(f"wrote {result['onnx']} ({result['bytes'] / 1e6:.1f} MB, output stride {result['output_stride']}); "
          f"onnxruntime matches PyTorch within {result['max_abs_diff']:.2e} (tolerance {result['tolerance']})")
    print(json.dumps(result))
