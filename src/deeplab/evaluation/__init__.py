"""eval.py and predict.py: a checkpoint's model on a split (metrics and their files) or on image files."""
