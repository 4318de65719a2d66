"""Masks and overlays for images: `python predict.py ckpt_path=PATH input=FILE_OR_DIR output=DIR`."""

from deeplab.cli.verbs import predict

if __name__ == "__main__":
    predict()
