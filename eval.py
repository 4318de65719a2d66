"""Evaluate a checkpoint: `python eval.py ckpt_path=PATH eval=paper` (deeplab/conf/evaluate.yaml, `deeplab-eval`)."""

from deeplab.cli.verbs import evaluate

if __name__ == "__main__":
    evaluate()
