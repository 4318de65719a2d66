"""An exported model read back as an `nn.Module` in the place of the network, so that eval.py,
predict.py and Segmenter run it through the project's own padding, scales, flip, windows and
metrics. What it is and what its images go through come from the export itself (config.json
beside the graph, or an ONNX file's own metadata), never from the user retyping them."""

import json
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from deeplab.builders.checkpoint import model_from_checkpoint
from deeplab.builders.pretrained import exported_format
from deeplab.deploy.int8 import require
from deeplab.errors import CheckpointError, ConfigError
from deeplab.inference.task import task_of

CONFIG_METADATA = "deeplab_config"  # an ONNX file's metadata key holding the resolved run config


class Graph(nn.Module):
    """A graph run by another runtime on the CPU. It takes normalised images (N, C, H, W) and gives
    logits; a graph that ends in the sigmoid (binary, multilabel) is given back as logits, which
    predict_probs activates again. Its output stride is the one it was exported at."""

    exported = True  # builders.model.inference_model: nothing to fold or move, it runs as it is

    def __init__(self, backend: str, output_stride: int, in_channels: int):
        super().__init__()
        self.backend, self.output_stride, self.in_channels = backend, output_stride, in_channels

    def set_output_stride(self, output_stride: int) -> None:
        if output_stride != self.output_stride:
            raise CheckpointError(f"os={output_stride}: this {self.backend} graph was exported at output stride "
                                  f"{self.output_stride}, which it keeps; export again with os={output_stride}")

    def run(self, images):
        """(the graph's output for a float32 NCHW array, whether that output is probabilities)."""
        raise NotImplementedError

    def raw(self, images: torch.Tensor):
        """The graph's own output (logits, or probabilities) as an array: what export checks."""
        return self.run(images.detach().cpu().float().contiguous().numpy())[0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        result, probabilities = self.run(images.detach().cpu().float().contiguous().numpy())
        result = torch.from_numpy(result)
        return torch.logit(result.clamp(1e-6, 1 - 1e-6)) if probabilities else result


class OnnxGraph(Graph):
    def __init__(self, path: Path, output_stride: int, in_channels: int = 3, backend: str = "onnx",
                 threads: int | None = None):
        super().__init__(backend, output_stride, in_channels)
        onnxruntime = require("onnxruntime", backend)
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.output = self.session.get_outputs()[0].name

    def run(self, images):
        (result,) = self.session.run([self.output], {"image": images})
        return result, self.output == "probabilities"


class OpenVinoGraph(Graph):
    def __init__(self, path: Path, output_stride: int, in_channels: int = 3, backend: str = "openvino"):
        super().__init__(backend, output_stride, in_channels)
        openvino = require("openvino", backend)
        from deeplab.deploy.openvino import FP32

        self.compiled = openvino.Core().compile_model(str(path), "CPU", FP32)
        self.output = self.compiled.outputs[0]

    def run(self, images):
        return self.compiled(images)[self.output], "probabilities" in self.output.get_names()


class TorchScriptGraph(Graph):
    """A traced TorchScript module (torch.jit.load): runs in PyTorch itself, without Python's model code."""

    def __init__(self, path: Path, output_stride: int, in_channels: int = 3, backend: str = "torchscript",
                 probabilities: bool = False):
        super().__init__(backend, output_stride, in_channels)
        self.module = torch.jit.load(str(path), map_location="cpu").eval()
        self.probabilities = probabilities  # a binary or multilabel model's module ends in its sigmoid

    def run(self, images):
        with torch.no_grad():
            return self.module(torch.from_numpy(images)).numpy(), self.probabilities


# Each format's file in its folder, and the module that runs it.
GRAPHS = {"onnx": ("model.onnx", OnnxGraph), "onnx-int8": ("model.onnx", OnnxGraph),
          "openvino": ("model.xml", OpenVinoGraph), "openvino-int8": ("model.xml", OpenVinoGraph),
          "torchscript": ("model.pt", TorchScriptGraph)}


def load_exported(path: str | Path) -> tuple[Graph, DictConfig]:
    """An export folder of tools/export.py, or an ONNX file it wrote, and the run config it came from."""
    path = Path(path)
    if path.is_file():
        onnx = require("onnx", "onnx")
        metadata = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        if CONFIG_METADATA not in metadata:
            raise CheckpointError(f"ckpt_path={path} is an ONNX file without the run config in its metadata (written "
                                  "before tools/export.py stored it); export the checkpoint again")
        config = OmegaConf.create(json.loads(metadata[CONFIG_METADATA]))
        output_stride = int(json.loads(metadata["output_stride"]))
        return OnnxGraph(path, output_stride, config.data.get("in_channels", 3)), config
    backend = exported_format(path)
    described = json.loads((path / "config.json").read_text())
    preprocessing = json.loads((path / "preprocessing.json").read_text())
    config = OmegaConf.create(described["run"])
    name, graph = GRAPHS[backend]
    sigmoid = {"probabilities": task_of(config).name != "multiclass"} if graph is TorchScriptGraph else {}
    return graph(path / name, int(preprocessing["output_stride"]), described.get("in_channels", 3),
                 backend=backend, **sigmoid), config


def load_model(path: str | Path) -> tuple[nn.Module, DictConfig]:
    """What eval.py and predict.py read: a checkpoint, a model folder, or an exported graph."""
    if Path(path).suffix == ".onnx" or exported_format(path):
        return load_exported(path)
    return model_from_checkpoint(path)


def runtime_device(model: nn.Module, device: str, key: str = "device") -> str:
    """The device asked for, for this model: an exported graph runs on its runtime's CPU, so `auto`
    is the CPU there and a GPU is refused rather than ignored."""
    if not getattr(model, "exported", False) or device == "cpu":
        return device
    if device == "auto":
        return "cpu"
    raise ConfigError(f"{key}={device}: the {model.backend} graph runs on the CPU (its runtime's); give {key}=cpu, "
                      "or run the checkpoint itself on the GPU")


def check_precision(model: nn.Module, precision: str) -> None:
    """eval.precision applies to PyTorch's arithmetic: an exported graph computes as it was exported."""
    if getattr(model, "exported", False) and precision != "fp32":
        raise ConfigError(f"eval.precision={precision}: the {model.backend} graph computes as it was exported; "
                          "allowed: fp32")
