"""Exports a trained checkpoint to ONNX (dynamic batch, height, width) and checks it with onnxruntime."""

import json
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from deeplab.config import check_command_line, one_line_errors
from deeplab.tools.export import ExportError, run
from deeplab.training.checkpoint import CheckpointError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="export")
def main(cfg: DictConfig) -> None:
    with one_line_errors(CheckpointError, ExportError):
        result = run(cfg)
    print(f"wrote {result['onnx']} ({result['bytes'] / 1e6:.1f} MB, output stride {result['output_stride']}); "
          f"onnxruntime matches PyTorch within {result['max_abs_diff']:.2e} (tolerance {result['tolerance']})")
    print(json.dumps(result))


if __name__ == "__main__":
    with one_line_errors():
        sys.argv[1:] = check_command_line(sys.argv[1:], CONF_DIR, config_name="export")
    main()
