"""`python tools/trimap_plot.py A B ... --output trimap.png`: the trimap curves of several
evaluations (eval.py directories or their metrics.json) in one figure, a line each, as the
DeepLabV3+ paper's Fig. 5a compares its decoder against bilinear upsampling."""

import argparse
import json
import sys
from pathlib import Path

from deeplab.evaluation.report import plot_trimap


def curve(path: Path) -> tuple[str, list[dict], str]:
    """(label, rows of width and mIoU, boundary kind) of one evaluation."""
    file = path / "metrics.json" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"{path}: no metrics.json (give eval.py's output directory or its metrics.json)")
    metrics = json.loads(file.read_text())
    if "trimap" not in metrics:
        raise ValueError(f"{file} has no trimap; evaluate with eval.trimap.widths=[...]")
    rows = [{"width": int(w), "mIoU": v["mIoU"]} for w, v in metrics["trimap"].items()]
    label = f"{file.parent.name} (OS{metrics.get('output_stride')})"
    return label, sorted(rows, key=lambda r: r["width"]), metrics.get("trimap_boundary", "labels")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tools/trimap_plot.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("evaluations", nargs="+", type=Path, help="eval.py output directories or metrics.json files")
    parser.add_argument("--labels", nargs="*", help="a label a line (default: the directory name and output stride)")
    parser.add_argument("--output", type=Path, default=Path("trimap.png"), help="the figure (default trimap.png)")
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.evaluations):
        print(f"error: --labels gives {len(args.labels)} labels for {len(args.evaluations)} evaluations",
              file=sys.stderr)
        return 2
    try:
        curves = [curve(p) for p in args.evaluations]
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    labels = args.labels or [label for label, _, _ in curves]
    plot_trimap(args.output, {label: rows for label, (_, rows, _) in zip(labels, curves, strict=True)}, None,
                curves[0][2])
    print(f"wrote {args.output} ({len(curves)} curves)")
    return 0
