"""Checks a dataset before training on it: `python tools/check_data.py data=voc data.root=PATH`."""

from deeplab.cli.verbs import check_data

if __name__ == "__main__":
    check_data()
