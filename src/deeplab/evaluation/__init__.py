"""Inference over scales and flips, and the segmentation metrics."""

from deeplab.evaluation.inference import predict_probs
from deeplab.evaluation.metrics import SegmentationMetrics

__all__ = ["SegmentationMetrics", "predict_probs"]
