"""Checks a dataset before training on it: `python tools/check_data.py data=voc data.root=PATH`."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from deeplab.config import check_command_line, check_train_config, one_line_errors
from deeplab.data.base import DatasetError
from deeplab.tools.check_data import run

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="check_data")
def main(cfg: DictConfig) -> None:
    with one_line_errors(DatasetError):
        for note in check_train_config(cfg, CONF_DIR):
            print(note)
        problems = run(cfg)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    with one_line_errors():
        sys.argv[1:] = check_command_line(sys.argv[1:], CONF_DIR, config_name="check_data")
    main()
