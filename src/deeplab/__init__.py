"""DeepLabV3 / DeepLabV3+ semantic segmentation experiments."""

from deeplab.resolvers import register as _register_resolvers

__version__ = "0.1.0"

_register_resolvers()
