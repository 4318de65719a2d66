"""The empirical receptive field (Luo et al., 2016): how strongly each input pixel moves one output
pixel, measured as the gradient of the centre pixel's outputs with respect to the input, averaged
over images. Its radius holding 95% of the gradient mass says how far a unit really looks; an
atrous rate widens it without adding weights."""

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

MASS = 0.95  # the share of the gradient mass the reported radius holds


def centre_gradient(output_of: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> np.ndarray:
    """|d(sum of the centre pixel's channels)/d(input)| summed over the input channels and averaged
    over the images: an (H, W) map. `output_of` maps the input batch to any (N, C, h, w) output."""
    images = images.detach().clone().requires_grad_(True)
    output = output_of(images)
    centre = output[:, :, output.shape[2] // 2, output.shape[3] // 2].sum()
    (gradient,) = torch.autograd.grad(centre, images)
    return gradient.abs().sum(dim=1).mean(dim=0).cpu().numpy()


def radius(gradient: np.ndarray, mass: float = MASS) -> float:
    """The smallest distance from the map's centre within which `mass` of its total lies (pixels)."""
    height, width = gradient.shape
    rows, cols = np.indices(gradient.shape)
    distance = np.hypot(rows - height // 2, cols - width // 2).ravel()
    order = np.argsort(distance, kind="stable")
    cumulative = np.cumsum(gradient.ravel()[order])
    if cumulative[-1] <= 0:
        return 0.0
    return float(distance[order][np.searchsorted(cumulative, mass * cumulative[-1])])


def branch_output(model: nn.Module, branch: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The output of one module of the model (an ASPP branch) as a function of the model's input."""

    def run(images: torch.Tensor) -> torch.Tensor:
        captured = []
        hook = branch.register_forward_hook(lambda module, args, output: captured.append(output))
        try:
            model(images)
        finally:
            hook.remove()
        return captured[0]

    return run


def aspp_branch_names(model: nn.Module) -> list[str]:
    """Labels of the ASPP's branches in order: 1x1, rate r for each atrous branch, image pooling."""
    rates = list(model.aspp.rates)
    names = ["1x1"] + [f"rate {r}" for r in rates]
    return names + ["image pooling"] * (len(model.aspp.branches) - len(names))


def receptive_fields(model: nn.Module, images: torch.Tensor) -> dict:
    """For the model at its current output stride: the logits' map and radius, and each ASPP
    branch's. The model is used in eval mode (batch norm's running statistics)."""
    model.eval()
    result = {"output_stride": model.output_stride, "logits": {}, "aspp": {}}
    gradient = centre_gradient(model, images)
    result["logits"] = {"radius95": radius(gradient), "map": gradient}
    for name, branch in zip(aspp_branch_names(model), model.aspp.branches, strict=True):
        gradient = centre_gradient(branch_output(model, branch), images)
        result["aspp"][name] = {"radius95": radius(gradient), "map": gradient}
    return result


def strongest_channels(activation: torch.Tensor, count: int) -> list[int]:
    """The channels of largest mean activation over the batch and the map."""
    means = activation.detach().float().mean(dim=(0, 2, 3))
    return means.topk(min(count, means.numel())).indices.tolist()


def feature_maps(model: nn.Module, image: torch.Tensor, modules: dict[str, str], count: int = 4) -> list[dict]:
    """For one image: each named module's output, its strongest `count` channels as (h, w) maps
    and its stride (the image's height over the map's)."""
    outputs = {}
    hooks = [model.get_submodule(name).register_forward_hook(
        lambda module, args, output, label=label: outputs.setdefault(label, output)) for label, name in modules.items()]
    try:
        with torch.no_grad():
            model.eval()(image)
    finally:
        for hook in hooks:
            hook.remove()
    rows = []
    for label in modules:
        output = outputs[label]
        channels = strongest_channels(output, count)
        rows.append({"label": label, "stride": 2 ** round(math.log2(image.shape[2] / output.shape[2])),
                     "size": list(output.shape[2:]), "channels": channels,
                     "maps": [output[0, c].float().cpu().numpy() for c in channels]})
    return rows
