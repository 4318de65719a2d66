"""Two evaluations compared, with a paired bootstrap interval: `python tools/compare.py A B`."""

import sys

from deeplab.tools.compare import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
