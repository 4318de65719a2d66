"""Feature maps and receptive fields: `python tools/inspect_model.py ckpt_path=PATH input=IMAGE`."""

from deeplab.cli.verbs import inspect_model

if __name__ == "__main__":
    inspect_model()
