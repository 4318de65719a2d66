"""The DeepLabV3+ paper's Tables 3 and 5 rows as configs of ours, and their Multiply-Adds."""

import csv
import functools
from pathlib import Path

from hydra import compose, initialize_config_dir

from deeplab.builders.model import build_model
from deeplab.inference.complexity import count_madds
from deeplab.model import DeepLab

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"
SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)  # the paper's multi-scale inputs


def read_rows(path: str | Path) -> list[dict]:
    with open(path) as file:
        return list(csv.DictReader(file))


def row_key(row: dict) -> tuple:
    return (row["backbone"], int(row["train_os"]), int(row["eval_os"]), row["decoder"] == "yes",
            row["separable"] == "yes")


@functools.cache
def model_for(backbone: str, train_os: int, eval_os: int, decoder: bool, separable: bool) -> DeepLab:
    """The row's model as `train.py data=voc backbone=... os=... ` builds it, switched to eval_os."""
    overrides = ["data=voc", f"backbone={backbone}", f"os='{train_os}'", f"model.aspp.separable={separable}",
                 "decoder=deeplabv3plus" if decoder else "decoder=deeplabv3"]
    if decoder:
        overrides.append(f"model.decoder.separable={separable}")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    model = build_model(cfg.model, num_classes=cfg.data.num_classes)
    model.set_output_stride(eval_os)
    return model


@functools.cache
def _pass_madds(key: tuple, scale: float, convention: str) -> int:
    return count_madds(model_for(*key), (513, 513), [scale], convention=convention)["madds"]


def row_madds(row: dict, convention: str) -> int:
    """Multiply-adds of the row's whole inference (every scale, and flipped copies)."""
    scales = SCALES if row["multi_scale"] == "yes" else (1.0,)
    copies = 2 if row["flip"] == "yes" else 1
    return copies * sum(_pass_madds(row_key(row), s, convention) for s in scales)
