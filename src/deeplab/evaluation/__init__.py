"""Inference over scales, flips and windows, and the segmentation metrics."""

from deeplab.evaluation.inference import predict_logits, predict_probs
from deeplab.evaluation.metrics import SegmentationMetrics

__all__ = ["SegmentationMetrics", "predict_logits", "predict_probs"]
