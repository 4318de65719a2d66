"""`python tools/compare.py A B`: two evaluations side by side (eval.py output directories, or
training run directories): per-class IoU differences, and when both evaluated the same images, a
paired bootstrap interval of the mIoU difference (the same resampled images for both)."""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from deeplab.inference.per_image import miou, resample

COUNTS = "per_image_counts.npz"  # written by eval.py beside metrics.json


def load(path: Path) -> tuple[dict, dict | None]:
    """(mIoU and per-class IoU, per-image counts or None) of an eval or a training run directory."""
    if (path / "metrics.json").is_file():
        metrics = json.loads((path / "metrics.json").read_text())
        counts = np.load(path / COUNTS) if (path / COUNTS).is_file() else None
        return metrics, None if counts is None else dict(counts)
    if (path / "summary.json").is_file():  # a training run: its last validation, no per-image counts
        summary = json.loads((path / "summary.json").read_text())
        return {"mIoU": summary["val/mIoU"], "per_class_iou": summary["per_class_iou"]}, None
    raise ValueError(f"{path} holds neither metrics.json (eval.py) nor summary.json (train.py)")


def paired_interval(a: dict, b: dict, resamples: int, seed: int = 0) -> list[float]:
    """2.5th and 97.5th percentiles of mIoU(B) - mIoU(A) over resamples of the images both saw."""
    draws = resample(len(a["tp"]), resamples, seed)  # the same draws for both: a paired interval
    diff = miou(draws @ b["tp"], draws @ b["fp"], draws @ b["fn"]) - miou(draws @ a["tp"], draws @ a["fp"],
                                                                          draws @ a["fn"])
    low, high = np.nanpercentile(diff, [2.5, 97.5])
    return [float(low), float(high)]


def aligned(a: dict, b: dict) -> tuple[dict, dict] | None:
    """Both counts in one image order, or None when the two did not evaluate the same images."""
    names_a, names_b = [str(n) for n in a["names"]], [str(n) for n in b["names"]]
    if sorted(names_a) != sorted(names_b) or len(set(names_a)) != len(names_a):
        return None
    order = np.array([names_b.index(n) for n in names_a])
    return a, {key: value[order] for key, value in b.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tools/compare.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="eval.py output directory or training run directory")
    parser.add_argument("b", type=Path, help="the other one; differences are B - A")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples of the images (default 1000)")
    args = parser.parse_args(argv)
    try:
        (metrics_a, counts_a), (metrics_b, counts_b) = load(args.a), load(args.b)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    classes = list(dict.fromkeys([*metrics_a["per_class_iou"], *metrics_b["per_class_iou"]]))
    width = max(len("class"), *(len(c) for c in classes))
    print(f"{'class':<{width}}  {'A':>7}  {'B':>7}  {'B - A':>7}")

    def cell(value) -> str:
        return "    n/a" if value is None else f"{100 * value:6.2f}%"

    for name in classes:
        a, b = metrics_a["per_class_iou"].get(name), metrics_b["per_class_iou"].get(name)
        diff = None if a is None or b is None else b - a
        print(f"{name:<{width}}  {cell(a):>7}  {cell(b):>7}  {'    n/a' if diff is None else f'{100 * diff:+6.2f}':>7}")
    difference = metrics_b["mIoU"] - metrics_a["mIoU"]
    line = f"mIoU A {100 * metrics_a['mIoU']:.2f}%  B {100 * metrics_b['mIoU']:.2f}%  B - A {100 * difference:+.2f}"
    pair = aligned(counts_a, counts_b) if counts_a is not None and counts_b is not None else None
    if pair is None:
        why = "per-image counts missing (evaluate both with eval.py)" if counts_a is None or counts_b is None \
            else "they evaluated different images"
        print(f"{line}  (no interval: {why})")
        return 0
    low, high = paired_interval(*pair, args.bootstrap)
    print(f"{line}  95% paired bootstrap interval over {len(pair[0]['tp'])} images: {100 * low:+.2f} .. "
          f"{100 * high:+.2f}")
    return 0
