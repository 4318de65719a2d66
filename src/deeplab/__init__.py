"""DeepLabV3 / DeepLabV3+ semantic segmentation experiments."""

from pathlib import Path

from deeplab.resolvers import register as _register_resolvers

__version__ = "0.1.0"
CONF_DIR = Path(__file__).resolve().parent / "conf"  # the Hydra configs, shipped inside the package

_register_resolvers()


def __getattr__(name: str):
    """`deeplab.train`, `deeplab.evaluate`, `deeplab.RunResult` (deeplab.api) and `deeplab.Segmenter`,
    imported when first used, so that `import deeplab` stays light (no Lightning, no Hydra)."""
    if name in ("train", "evaluate", "RunResult"):
        from deeplab import api

        return getattr(api, name)
    if name == "Segmenter":
        from deeplab.evaluation.segmenter import Segmenter

        return Segmenter
    raise AttributeError(f"module 'deeplab' has no attribute {name!r}")
