"""DeepLabV3 / DeepLabV3+ semantic segmentation experiments."""

__version__ = "0.1.0"
