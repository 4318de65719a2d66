"""Train DeepLabV3 / V3+: `python train.py backbone=xception os=8` (deeplab/conf/train.yaml; also `deeplab-train`)."""

from deeplab.cli.verbs import train

if __name__ == "__main__":
    train()
