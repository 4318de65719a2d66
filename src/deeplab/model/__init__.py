"""Plain PyTorch DeepLabV3 / V3+ modules: no Lightning, no Hydra, usable on their own."""

from deeplab.model.aspp import ASPP
from deeplab.model.decoder import Decoder
from deeplab.model.deeplab import DeepLab
from deeplab.model.encoder import build_encoder, input_statistics, resolve_encoder_name

__all__ = ["ASPP", "Decoder", "DeepLab", "build_encoder", "input_statistics", "resolve_encoder_name"]
