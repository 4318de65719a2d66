"""Trimap curves of several evaluations in one figure: `python tools/trimap_plot.py A B --output F`."""

import sys

from deeplab.tools.trimap_plot import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
