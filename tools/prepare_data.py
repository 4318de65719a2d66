"""Writes what a dataset needs on disk before training, once: `python tools/prepare_data.py data=voc_aug`
(SBD's .mat labels to PNGs and the train_aug list) or `data=synthetic` (the generated set)."""

import sys
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from deeplab.config import check_command_line, check_train_config, one_line_errors
from deeplab.data.base import DatasetError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="check_data")
def main(cfg: DictConfig) -> None:
    with one_line_errors(DatasetError):
        for note in check_train_config(cfg, CONF_DIR):
            print(note)
        if not cfg.data.get("prepare"):
            print(f"data.root={cfg.data.root}: this dataset needs no preparation")
            return
        print(f"prepared: {instantiate(cfg.data.prepare)()}")


if __name__ == "__main__":
    with one_line_errors():
        sys.argv[1:] = check_command_line(sys.argv[1:], CONF_DIR, config_name="check_data")
    main()
