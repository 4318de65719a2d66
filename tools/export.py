"""Exports a checkpoint to ONNX and checks it with onnxruntime: `python tools/export.py ckpt_path=PATH`."""

from deeplab.cli.verbs import export

if __name__ == "__main__":
    export()
