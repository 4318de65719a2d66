"""Rebuilds a sweep's report.md, report.csv and pareto.png: `python tools/report.py SWEEP_DIR`."""

import sys
from pathlib import Path

from deeplab.tools.report import write_report


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tools/report.py SWEEP_DIR", file=sys.stderr)
        return 2
    sweep_dir = Path(argv[0])
    if not sweep_dir.is_dir():
        print(f"error: SWEEP_DIR={sweep_dir} is not a directory", file=sys.stderr)
        return 2
    rows = write_report(sweep_dir)
    if not rows:
        print(f"error: SWEEP_DIR={sweep_dir} holds no job directories (0/, 1/, ... with summary.json)",
              file=sys.stderr)
        return 2
    print(f"wrote {sweep_dir / 'report.md'}, report.csv and pareto.png ({len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
