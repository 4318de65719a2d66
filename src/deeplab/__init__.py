"""DeepLabV3 / DeepLabV3+ semantic segmentation experiments."""

from pathlib import Path

from deeplab.resolvers import register as _register_resolvers

__version__ = "0.1.0"
CONF_DIR = Path(__file__).resolve().parent / "conf"  # the Hydra configs, shipped inside the package

_register_resolvers()
