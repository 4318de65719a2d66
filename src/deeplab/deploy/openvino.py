"""OpenVINO: the FP32 ONNX graph converted to OpenVINO's IR (model.xml and model.bin, weights kept
FP32), and INT8 by NNCF's post-training quantisation calibrated on the same images as
onnxruntime's. Run on the CPU in FP32: OpenVINO would otherwise pick bf16 where the CPU has it."""

from pathlib import Path

import numpy as np

from deeplab.deploy.int8 import require

FP32 = {"INFERENCE_PRECISION_HINT": "f32"}


def convert(onnx_graph: Path, xml: Path) -> None:
    openvino = require("openvino", "openvino")
    openvino.save_model(openvino.convert_model(str(onnx_graph)), str(xml), compress_to_fp16=False)


def quantize(onnx_graph: Path, xml: Path, calibration: list[np.ndarray], keep_fp32: list[str]) -> None:
    """NNCF's default INT8 recipe (symmetric activations: its performance preset) over every
    calibration image, with the named operations left in FP32."""
    openvino = require("openvino", "openvino-int8")
    nncf = require("nncf", "openvino-int8")
    quantized = nncf.quantize(openvino.convert_model(str(onnx_graph)), nncf.Dataset(calibration),
                              subset_size=len(calibration), preset=nncf.QuantizationPreset.PERFORMANCE,
                              ignored_scope=nncf.IgnoredScope(names=list(keep_fp32)) if keep_fp32 else None)
    openvino.save_model(quantized, str(xml), compress_to_fp16=False)


def operation_names(xml: Path, kind: str = "Convolution") -> list[str]:
    """The names of a graph's operations of one kind, as keep_fp32 takes them."""
    openvino = require("openvino", "openvino")
    return [op.get_friendly_name() for op in openvino.Core().read_model(str(xml)).get_ordered_ops()
            if op.get_type_name() == kind]
