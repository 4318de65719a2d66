"""Evaluate a checkpoint: `python eval.py ckpt_path=PATH eval=paper` (see conf/evaluate.yaml; also `deeplab-eval`)."""

from deeplab.cli.verbs import evaluate

if __name__ == "__main__":
    evaluate()
