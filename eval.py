"""Evaluate a checkpoint: `python eval.py ckpt_path=PATH eval=paper` (see conf/evaluate.yaml)."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from deeplab.config import check_command_line, one_line_errors
from deeplab.data.base import DatasetError
from deeplab.evaluation.evaluate import evaluate
from deeplab.training.checkpoint import CheckpointError

CONF_DIR = Path(__file__).resolve().parent / "conf"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> float:
    with one_line_errors(DatasetError, CheckpointError):
        return evaluate(cfg)["mIoU"]


if __name__ == "__main__":
    with one_line_errors():
        sys.argv[1:] = check_command_line(sys.argv[1:], CONF_DIR, config_name="evaluate")
    main()
