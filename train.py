"""Train DeepLabV3 / V3+: `python train.py backbone=xception os=8` (see conf/train.yaml)."""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only

from deeplab.config import check_command_line, check_train_config, one_line_errors
from deeplab.data.base import DatasetError
from deeplab.training.checkpoint import CheckpointError
from deeplab.training.resume import Interrupted, NonFiniteLoss, check_fresh_run_dir, resume_command_line
from deeplab.training.run import train

CONF_DIR = Path(__file__).resolve().parent / "conf"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    with one_line_errors(DatasetError, CheckpointError, NonFiniteLoss, Interrupted):
        for note in check_train_config(cfg, CONF_DIR):
            rank_zero_only(print)(note)
        return train(cfg, choices=dict(HydraConfig.get().runtime.choices))


if __name__ == "__main__":
    with one_line_errors(CheckpointError):
        sys.argv[1:] = check_command_line(resume_command_line(sys.argv[1:]), CONF_DIR)
        check_fresh_run_dir(sys.argv[1:], CONF_DIR)
    main()
