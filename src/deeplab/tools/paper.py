"""The DeepLabV3+ paper's Tables 3 and 5 rows as configs of ours, and their Multiply-Adds."""

import csv
import functools
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from deeplab import CONF_DIR
from deeplab.builders.model import build_model
from deeplab.inference.complexity import count_madds
from deeplab.model import DeepLab

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
    overrides = ["data=voc", f"backbone={backbone}", f"os={train_os}", f"model.aspp.separable={separable}",
                 "decoder=deeplabv3plus" if decoder else "decoder=deeplabv3"]
    if decoder:
        overrides.append(f"model.decoder.separable={separable}")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with torch.device("meta"):  # shapes only: counting needs no weights, and none are initialised
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


TABLE_HEADER = ["| table | backbone | train OS | eval OS | decoder | MS | flip | sep | params | paper | tf | tf/paper "
                "| plain | plain/paper |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
BEGIN, END = "<!-- paper_table: begin -->", "<!-- paper_table: end -->"  # where --write puts the table


def table_row(row: dict) -> str:
    """One ImageNet row of the paper's tables beside our counts in both conventions, as Markdown."""
    paper = float(row["madds_billion"])
    tf, plain = row_madds(row, "tf") / 1e9, row_madds(row, "plain") / 1e9
    params = sum(p.numel() for p in model_for(*row_key(row)).parameters()) / 1e6
    return (f"| {row['source']} | {row['backbone']} | {row['train_os']} | {row['eval_os']} | {row['decoder']} | "
            f"{row['multi_scale']} | {row['flip']} | {row['separable']} | {params:.2f} M | {paper:.2f}B | "
            f"{tf:.2f}B | {tf / paper:.4f} | {plain:.2f}B | {plain / paper:.4f} |")


def replace_table(document: str, lines: list[str]) -> str:
    """The document with the lines between its BEGIN and END markers replaced."""
    if BEGIN not in document or END not in document:
        raise ValueError(f"the document has no {BEGIN} ... {END} block to write the table into")
    head, rest = document.split(BEGIN, 1)
    return head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + rest.split(END, 1)[1]
