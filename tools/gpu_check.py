"""Does every GPU path work, and how fast: `python tools/gpu_check.py` (`--dry-run`: the same on the CPU)."""

import sys

from deeplab.tools.gpu_check import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
