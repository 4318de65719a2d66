"""Training loader throughput: `python tools/bench_loader.py data=voc data.root=PATH workers=[0,1,2]`."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from deeplab.config import check_command_line, check_train_config, one_line_errors
from deeplab.data.base import DatasetError
from deeplab.tools.loader_bench import report

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="bench_loader")
def main(cfg: DictConfig) -> None:
    with one_line_errors(DatasetError):
        for note in check_train_config(cfg, CONF_DIR):
            print(note)
        report(cfg)


if __name__ == "__main__":
    with one_line_errors():
        sys.argv[1:] = check_command_line(sys.argv[1:], CONF_DIR, config_name="bench_loader")
    main()
