"""What an evaluation leaves behind: a printed per-class table, metrics.json, per_class_iou.csv
and a confusion-matrix picture."""

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def per_class_rows(class_names: Sequence[str], iou: Sequence[float], confmat: np.ndarray) -> list[dict]:
    """One row a class: IoU (None when the class is in neither prediction nor ground truth),
    its ground-truth and predicted pixel counts."""
    return [{"class_id": i, "class": name, "iou": None if math.isnan(value) else value,
             "gt_pixels": int(confmat[i].sum()), "pred_pixels": int(confmat[:, i].sum())}
            for i, (name, value) in enumerate(zip(class_names, iou, strict=True))]


def format_table(rows: list[dict], miou: float, pixel_acc: float) -> str:
    width = max(len("class"), *(len(r["class"]) for r in rows))
    lines = [f"{'class':<{width}}  {'IoU':>7}  {'gt pixels':>12}  {'pred pixels':>12}"]
    for row in rows:
        iou = "    n/a" if row["iou"] is None else f"{100 * row['iou']:6.2f}%"
        lines.append(f"{row['class']:<{width}}  {iou:>7}  {row['gt_pixels']:>12}  {row['pred_pixels']:>12}")
    lines.append(f"{'mIoU':<{width}}  {100 * miou:6.2f}%")
    lines.append(f"{'pixel acc':<{width}}  {100 * pixel_acc:6.2f}%")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n")


def plot_confusion(path: Path, confmat: np.ndarray, class_names: Sequence[str]) -> None:
    """Rows are the ground truth, normalised to 1: the diagonal is each class's recall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recall = confmat / np.maximum(confmat.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    side = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=90)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    if n <= 25:
        for i in range(n):
            for j in range(n):
                if recall[i, j] >= 0.005:
                    ax.text(j, i, f"{recall[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if recall[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the ground-truth class")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
