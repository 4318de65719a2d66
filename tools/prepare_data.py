"""Writes what a dataset needs on disk before training, once: `python tools/prepare_data.py data=voc_aug`
(SBD's .mat labels to PNGs and the train_aug list) or `data=synthetic` (the generated set)."""

from deeplab.cli.verbs import prepare_data

if __name__ == "__main__":
    prepare_data()
