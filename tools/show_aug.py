"""Augmentation preview: `python tools/show_aug.py data=synthetic aug=deeplab num=16` writes aug_preview.png."""

from deeplab.cli.verbs import show_aug

if __name__ == "__main__":
    show_aug()
