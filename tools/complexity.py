"""Parameters and multiply-adds of one full inference: `python tools/complexity.py backbone=xception65 eval=paper`."""

from deeplab.cli.verbs import complexity

if __name__ == "__main__":
    complexity()
