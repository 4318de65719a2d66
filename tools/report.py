"""Rebuilds a sweep's report.md, report.csv and pareto.png: `python tools/report.py SWEEP_DIR`."""

import sys

from deeplab.tools.report import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
