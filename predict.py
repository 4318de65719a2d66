"""Masks and overlays for images: `python predict.py ckpt_path=PATH input=FILE_OR_DIR output=DIR`."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from deeplab.config import check_command_line, one_line_errors
from deeplab.evaluation.predict import PredictError, predict
from deeplab.training.checkpoint import CheckpointError

CONF_DIR = Path(__file__).resolve().parent / "conf"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="predict")
def main(cfg: DictConfig) -> None:
    with one_line_errors(PredictError, CheckpointError):
        unreadable = predict(cfg)
    if unreadable:
        sys.exit(1)  # the readable images are done; the others are named above


if __name__ == "__main__":
    with one_line_errors():
        sys.argv[1:] = check_command_line(sys.argv[1:], CONF_DIR, config_name="predict")
    main()
