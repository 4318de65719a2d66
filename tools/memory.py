"""A training step's memory, predicted without the target device:
`python tools/memory.py backbone=xception65 os=8 memory.budget_gb=80`."""

from deeplab.cli.verbs import memory

if __name__ == "__main__":
    memory()
