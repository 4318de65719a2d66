"""Encoders from segmentation-models-pytorch (and timm through it), dilated to an output stride."""

import difflib
import json
import socket
from functools import lru_cache
from pathlib import Path

import segmentation_models_pytorch as smp
import timm
from torch import nn

from deeplab.imagenet import MEAN as IMAGENET_MEAN
from deeplab.imagenet import STD as IMAGENET_STD

OUTPUT_STRIDES = (8, 16, 32)
WEIGHTS = (None, "imagenet")  # random initialisation, or the encoder's ImageNet weights
LOW_LEVEL_INDEX = 2  # smp encoders return features at strides 1, 2, 4, 8, 16, 32: index 2 is stride 4
LOW_LEVEL_STRIDE = 4  # the stride of that feature: the decoder's grid


@lru_cache(maxsize=1)
def _timm_names() -> frozenset:
    return frozenset(timm.list_models())


def resolve_encoder_name(name: str) -> str:
    """smp encoder names are used as they are; a timm model name is reached through smp's
    `tu-` universal encoder. Anything else is an error that lists close matches."""
    if name in smp.encoders.encoders or name.startswith("tu-") and name[3:] in _timm_names():
        return name
    if name in _timm_names():
        return f"tu-{name}"
    known = list(smp.encoders.encoders) + sorted(_timm_names())
    close = difflib.get_close_matches(name.removeprefix("tu-"), known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"model.backbone.name={name!r} is neither an smp encoder nor a timm model{hint}")


def build_encoder(name: str, weights: str | None = None, output_stride: int = 16, in_channels: int = 3) -> nn.Module:
    """Returns an smp encoder whose last stages use dilation instead of stride, so that the
    deepest feature has the given output stride. Other than 3 input channels, the first
    convolution is adapted as smp and timm do it (with ImageNet weights: the RGB filters repeated
    over the channels and scaled by 3 / in_channels)."""
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride={output_stride} is not allowed; allowed: {list(OUTPUT_STRIDES)}")
    if weights not in WEIGHTS:
        raise ValueError(f"model.backbone.weights={weights!r} is not allowed; allowed: imagenet, null")
    resolved = resolve_encoder_name(name)
    if weights is not None:
        check_weights_available(resolved)
    try:
        return smp.encoders.get_encoder(resolved, in_channels=in_channels, depth=5, weights=weights,
                                        output_stride=output_stride)
    except Exception as err:  # smp and timm raise assorted types; keep their reason, one line
        reason = " ".join(str(err).split())
        raise ValueError(f"cannot build encoder {resolved!r} (weights={weights}, output_stride={output_stride}, "
                         f"in_channels={in_channels}): {reason}") from err


def apply_multi_grid(encoder: nn.Module, multi_grid, output_stride: int) -> None:
    """DeepLabV3's multi-grid: the 3x3 convs of the last ResNet stage's units get rates
    (32 / output_stride) * multi_grid, e.g. (2, 4, 8) at OS16 for multi_grid (1, 2, 4)."""
    stage = getattr(getattr(encoder, "model", encoder), "layer4", None)
    blocks = list(stage) if stage is not None else []
    if not blocks or not all(isinstance(getattr(b, "conv2", None), nn.Conv2d) for b in blocks):
        raise ValueError("model.backbone.multi_grid needs a ResNet-style encoder (a layer4 of units with conv2)")
    if len(multi_grid) != len(blocks):
        raise ValueError(f"model.backbone.multi_grid={list(multi_grid)} needs {len(blocks)} values, one per unit "
                         "of the last stage")
    base = 32 // output_stride
    for block, grid in zip(blocks, multi_grid, strict=True):
        rate = base * int(grid)
        block.conv2.dilation = (rate, rate)
        block.conv2.padding = (rate * (block.conv2.kernel_size[0] - 1) // 2,) * 2


def weights_file(resolved: str) -> tuple[str, str | None, list[str]]:
    """The Hugging Face Hub repository, revision and candidate file names of an encoder's ImageNet
    weights, as smp (native encoders) and timm (`tu-` encoders) fetch them."""
    if resolved.startswith("tu-"):
        cfg = timm.models.get_pretrained_cfg(resolved[3:])
        if cfg is None or not cfg.hf_hub_id:
            raise ValueError(f"model.backbone.weights=imagenet: timm has no pretrained weights for {resolved[3:]}")
        return cfg.hf_hub_id, None, ["model.safetensors", "pytorch_model.bin"]
    settings = smp.encoders.encoders[resolved]["pretrained_settings"].get("imagenet")
    if settings is None:
        raise ValueError(f"model.backbone.weights=imagenet: smp has no ImageNet weights for {resolved}")
    return settings["repo_id"], settings.get("revision"), ["model.safetensors"]


# smp's own encoders whose ImageNet weights were not trained on ImageNet-normalised inputs (the
# ports of TF and Cadene's pretrainedmodels); smp keeps these figures in each hub repo's config.json.
_SMP_STATISTICS = {
    **dict.fromkeys(["xception", "inceptionv4", "inceptionresnetv2"], ((0.5,) * 3, (0.5,) * 3)),
    **{f"timm-tf_efficientnet_lite{i}": ((0.5,) * 3, (0.5,) * 3) for i in range(5)},
    **{f"dpn{d}": ((124 / 255, 117 / 255, 104 / 255), (1 / (0.0167 * 255),) * 3)
       for d in ("68", "68b", "92", "98", "107", "131")},
}


def input_statistics(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel mean and std (of [0, 1] RGB) that an encoder's ImageNet weights were trained
    with: timm's pretrained config for timm models (Xception-65's TF-ported weights expect [-1, 1],
    i.e. 0.5 and 0.5); for smp's own encoders, the cached hub config when there is one, else the
    known figures above, else ImageNet's."""
    resolved = resolve_encoder_name(name)
    if resolved.startswith("tu-"):
        cfg = timm.models.get_pretrained_cfg(resolved[3:])
        if cfg is not None and cfg.mean is not None and cfg.std is not None:
            return tuple(cfg.mean), tuple(cfg.std)
        return IMAGENET_MEAN, IMAGENET_STD
    cached = _cached_smp_config(resolved)
    if cached is not None:
        return tuple(cached["mean"]), tuple(cached["std"])
    return _SMP_STATISTICS.get(resolved, (IMAGENET_MEAN, IMAGENET_STD))


def _cached_smp_config(resolved: str) -> dict | None:
    from huggingface_hub import try_to_load_from_cache

    settings = smp.encoders.encoders[resolved]["pretrained_settings"].get("imagenet")
    if settings is None:
        return None
    path = try_to_load_from_cache(settings["repo_id"], "config.json", revision=settings.get("revision"))
    if not isinstance(path, str):
        return None
    config = json.loads(Path(path).read_text())
    return config if "mean" in config and "std" in config else None


def _hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def check_weights_available(resolved: str) -> None:
    """Fails at once, in one line, when the weights are neither cached nor downloadable, instead
    of letting the download retry for a minute and fail deep inside smp or timm."""
    from huggingface_hub import constants, try_to_load_from_cache

    repo_id, revision, files = weights_file(resolved)
    if any(isinstance(try_to_load_from_cache(repo_id, f, revision=revision), str) for f in files):
        return
    if constants.HF_HUB_OFFLINE or not _hub_reachable():
        raise ValueError(
            f"model.backbone.weights=imagenet needs {repo_id}/{files[0]}, which is not in the Hugging Face "
            f"cache {constants.HF_HUB_CACHE} and cannot be downloaded (no network); either set "
            f"model.backbone.weights=null or place the file in that cache "
            f"(`huggingface-cli download {repo_id}` on a machine with network, then copy the cache folder)")
