"""complexity.by_module: the separable-convolution arithmetic on the textbook case, and module rows
that add up to the model's count to the last multiply-add on every backbone."""

import pytest
import torch
from torch import nn

from deeplab.builders.model import build_model
from deeplab.inference.by_module import convolution_calls, count_by_module, separable_convolutions
from deeplab.inference.complexity import count_madds

from ..conftest import TINY_NET, compose_config


def test_textbook_depthwise_separable_convolution():
    """A 3x3 conv from 3 to 16 channels on a 128x128 map: 432 weights, 7,077,888 multiply-adds.
    Separable: 27 + 48 = 75 weights, 442,368 + 786,432 = 1,228,800 multiply-adds, 5.76x fewer."""
    depthwise = nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False)
    pointwise = nn.Conv2d(3, 16, 1, bias=False)
    model = nn.Sequential(depthwise, nn.BatchNorm2d(3), nn.ReLU(), pointwise)
    [pair] = separable_convolutions(convolution_calls(model, [torch.zeros(1, 3, 128, 128)]))
    assert (pair["depthwise"], pair["pointwise"], pair["kernel"], pair["in"], pair["out"]) == ("0", "3", [3, 3], 3, 16)
    assert pair["standard_params"] == 432 and pair["standard_madds"] == 7_077_888
    assert pair["params"] == 27 + 48 == 75
    assert 27 * 128 * 128 == 442_368 and 48 * 128 * 128 == 786_432
    assert pair["madds"] == 1_228_800
    assert pair["standard_madds"] / pair["madds"] == pytest.approx(5.76)
    standard = nn.Conv2d(3, 16, 3, padding=1, bias=False)  # what the standard conv really counts
    assert count_madds(nn.Sequential(standard), (128, 128))["madds"] == pair["standard_madds"]
    assert standard.weight.numel() == pair["standard_params"]


def test_a_depthwise_conv_not_followed_by_a_pointwise_one_is_not_counted_as_separable():
    model = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.Conv2d(4, 8, 3, padding=1))
    assert separable_convolutions(convolution_calls(model, [torch.zeros(1, 4, 16, 16)])) == []


@pytest.mark.slow
@pytest.mark.parametrize("overrides, scales, flip", [
    (["backbone=xception65", "os=16"], [1.0], False),
    (["backbone=mobilenet_v2", "os=8"], [0.5, 1.0], True),
    (["backbone=resnet18", "decoder=deeplabv3"], [1.0], False),
    (list(TINY_NET), [0.75, 1.25], True),
])
def test_module_rows_add_up_to_the_model(overrides, scales, flip):
    model = build_model(compose_config(*overrides).model, 21)
    table = count_by_module(model, (129, 161), scales, flip)
    assert table["madds"] == count_madds(model, (129, 161), scales, flip)["madds"]
    assert sum(r["madds"] for r in table["rows"]) == table["madds"]
    assert sum(r["params"] for r in table["rows"]) == table["params"] == sum(p.numel() for p in model.parameters())
    assert not any(r["module"].startswith("other") for r in table["rows"])
    labels = [r["module"] for r in table["rows"]]
    assert labels[-1] == "classifier" and "aspp projection" in labels and "aspp image pooling" in labels
    assert ("decoder refinement conv 2" in labels) == ("decoder=deeplabv3" not in overrides)
    separable = [r for r in table["rows"] if r["separable"]]
    assert all(r["standard_madds"] > r["madds"] and r["standard_params"] > r["params"] for r in separable)
    plain = [r for r in table["rows"] if not r["separable"]]
    assert all(r["standard_madds"] == r["madds"] for r in plain)


def test_aspp_branch_rows_by_hand():
    """Xception-65 at OS16 on 513: the rate-6 branch at 33x33 is a 2048-channel 3x3 depthwise and
    a 2048 -> 256 pointwise conv; a standard 3x3 conv would have 9 x 2048 x 256 weights."""
    model = build_model(compose_config("backbone=xception65", "os=16").model, 21)
    rows = {r["module"]: r for r in count_by_module(model, (513, 513))["rows"]}
    row = rows["aspp 3x3 rate 6"]
    assert row["madds"] == (9 * 2048 + 2048 * 256) * 33 * 33 == 591_022_080
    assert row["standard_madds"] == 9 * 2048 * 256 * 33 * 33
    strides = [int(label.split("stride ")[1].rstrip(")")) for label in rows if label.startswith("encoder stage")]
    assert strides == [2, 4, 8, 16, 16]  # the last stage dilated at OS16
