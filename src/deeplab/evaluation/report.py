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


def run_record(cfg, config, split: str, output_stride: int, settings: dict, device, precision: str,
               backend: str = "pytorch") -> dict:
    """What metrics.json says of the evaluation itself: checkpoint, the runtime that ran it (pytorch,
    or an exported graph's), data, output strides and the inference settings (a window and stride
    only where slide mode used them)."""
    return {"ckpt_path": str(cfg.ckpt_path), "backend": backend, "data_root": config.data.root, "split": split,
            "train_output_stride": config.model.output_stride, "output_stride": output_stride, **settings,
            **({"window": None, "stride": None} if settings["mode"] == "whole" else {}),
            "device": str(device), "fast": bool(cfg.eval.get("fast", True)), "precision": precision}


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


def plot_trimap(path: Path, curves: dict[str, list[dict]], whole: float | None, boundary: str) -> None:
    """The paper's Fig. 5a: mIoU within the trimap band against its width, a line a setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for label, rows in curves.items():
        ax.plot([r["width"] for r in rows], [100 * r["mIoU"] for r in rows], marker="o", label=label)
    if whole is not None:
        ax.axhline(100 * whole, color="grey", linestyle="--", linewidth=1, label="whole image")
    ax.set_xlabel(f"trimap width (pixels, band around {'void' if boundary == 'void' else 'class'} boundaries)")
    ax.set_ylabel("mIoU (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_worst(path: Path, rows: list[dict], palette: np.ndarray, ignore_index: int) -> None:
    """A row an image (`name`, `score`, `image` RGB, `truth`, `pred`): image | ground truth |
    prediction | errors (wrong pixels red, void grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def coloured(mask: np.ndarray) -> np.ndarray:
        out = np.full((*mask.shape, 3), 128, np.uint8)  # void grey
        known = mask != ignore_index
        out[known] = palette[np.clip(mask[known], 0, len(palette) - 1)]
        return out

    fig, axes = plt.subplots(len(rows), 4, figsize=(12, 2.6 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows, strict=True):
        errors = np.zeros((*row["truth"].shape, 3), np.uint8)
        errors[(row["pred"] != row["truth"]) & (row["truth"] != ignore_index)] = (230, 30, 30)
        errors[row["truth"] == ignore_index] = (128, 128, 128)
        panels = (row["image"], coloured(row["truth"]), coloured(row["pred"]), errors)
        for ax, panel, title in zip(ax_row, panels, ("image", "ground truth", "prediction", "errors"), strict=True):
            ax.imshow(panel)
            ax.set_axis_off()
            ax.set_title(f"{row['name']}  mIoU {100 * row['score']:.1f}%" if title == "image" else title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
