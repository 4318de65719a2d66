"""eval.fast's prepared copy: every batch norm that follows a convolution folded into it, found by
running the model (any encoder), the same logits to 1e-4, and the trained model left as it was."""

import pytest
import torch
from torch import nn

from deeplab.builders.model import build_model
from deeplab.inference import prepare
from deeplab.inference.prepare import fold_batch_norm, nchw_copy, prepare_for_inference

from ..conftest import TINY_NET, compose_config


def randomise_statistics(model: nn.Module) -> None:
    """Running statistics other than the initial 0 and 1, so that folding has something to fold."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=generator) * 0.1)


@pytest.mark.parametrize("overrides", [
    pytest.param(["backbone=resnet18"], marks=pytest.mark.slow),
    pytest.param(["backbone=xception65", "os=8"], marks=pytest.mark.slow),
    ["backbone=mobilenet_v2"], list(TINY_NET), [*TINY_NET, "recipe=small_data"]])
def test_folded_copy_gives_the_same_logits_and_leaves_the_model_alone(overrides):
    torch.manual_seed(0)
    model = build_model(compose_config(*overrides).model, 5)
    randomise_statistics(model)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch_norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    prepared = prepare_for_inference(model, fast=True)
    left = sum(isinstance(m, nn.BatchNorm2d) for m in prepared.modules())
    assert left < batch_norms / 10, (left, batch_norms)  # nearly all follow a convolution
    assert not prepared.training
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in prepared.parameters() if p.dim() == 4)
    image = torch.randn(2, 3, 97, 113, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain = prepare_for_inference(model, fast=False)(image)
        folded = prepared(image)
    assert (folded - plain).abs().max().item() <= 1e-4 * max(1.0, plain.abs().max().item())
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == batch_norms


class SharedOutput(nn.Module):
    """A convolution whose output feeds a batch norm and is also used again."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.after_relu = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU(), nn.BatchNorm2d(4))

    def forward(self, x):
        y = self.conv(x)
        return self.after_relu(self.bn(y) + y)


def test_only_a_batch_norm_right_after_a_convolution_is_folded_and_a_wrong_fold_is_not_used(caplog):
    model = SharedOutput()
    randomise_statistics(model)
    model.eval()
    probe = torch.randn(1, 3, 16, 16)
    copy = prepare_for_inference(model, fast=False)
    assert fold_batch_norm(copy, probe) == 1  # conv -> bn; the batch norm after the ReLU stays
    assert isinstance(copy.after_relu[2], nn.BatchNorm2d) and isinstance(copy.bn, nn.Identity)
    with caplog.at_level("WARNING"):
        prepared = prepare_for_inference(model, fast=True)  # y is used again: folding would change it
    assert "eval.fast: folding batch norm changed the logits by " in caplog.text
    assert "this inference runs the model unfolded" in caplog.text
    with torch.no_grad():  # the unfolded model, whose logits are the model's own
        assert torch.equal(prepared(probe), model(probe)) and isinstance(prepared.bn, nn.BatchNorm2d)


def test_timm_batch_norm_with_activation_keeps_its_activation():
    from timm.layers import BatchNormAct2d

    model = nn.Sequential(nn.Conv2d(3, 4, 3), BatchNormAct2d(4, act_layer=nn.ReLU))
    randomise_statistics(model)
    model.eval()
    image = torch.randn(2, 3, 12, 12)
    prepared = prepare_for_inference(model, fast=True)
    assert isinstance(prepared[1], nn.Sequential) and isinstance(prepared[1][1], nn.ReLU)
    with torch.no_grad():
        assert torch.allclose(prepared(image), model(image), atol=1e-6) and (model(image) == 0).any()


@pytest.mark.parametrize("stride, slow_rates", [("16", {2: 12, 3: 18}), ("8", {1: 12, 2: 24, 3: 36})])
def test_blocks_with_a_depthwise_conv_dilated_beyond_six_run_contiguous_in_a_channels_last_copy(stride, slow_rates):
    """oneDNN's channels-last depthwise kernel is 3-8x slower above dilation 6: those ASPP branches
    see their input in the contiguous layout; every other convolution sees channels-last."""
    torch.manual_seed(0)
    model = build_model(compose_config("backbone=mobilenet_v2", f"os={stride}").model, 5)
    randomise_statistics(model)
    prepared = prepare_for_inference(model, fast=True)
    layouts = {}

    def record(name):
        def hook(module, args):
            channels_last = args[0].is_contiguous(memory_format=torch.channels_last)  # a 1x1 map is both
            layouts[name] = "channels_last" if channels_last else "contiguous"
        return hook

    for name, module in prepared.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels > 1:
            module.register_forward_pre_hook(record(name))
    image = torch.randn(2, 3, 65, 65).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        folded = prepared(image)
        plain = prepare_for_inference(model, fast=False)(image.contiguous())
    contiguous = {name for name, layout in layouts.items() if layout == "contiguous"}
    assert contiguous == {f"aspp.branches.{i}.{conv}" for i in slow_rates for conv in ("conv_dw", "conv_pw")}
    assert [prepared.aspp.branches[i].conv_dw.dilation[0] for i in slow_rates] == list(slow_rates.values())
    assert len(layouts) > 40 and folded.is_contiguous(memory_format=torch.channels_last)
    assert (folded - plain).abs().max().item() <= 1e-4 * max(1.0, plain.abs().max().item())


@pytest.mark.parametrize("stride", ["16", "8"])
def test_the_branches_fed_one_tensor_convert_it_once_a_forward_and_keep_nothing_after(monkeypatch, stride):
    """The ASPP's slow branches (two at OS16, three at OS8) all take the encoder's output: one
    conversion a forward serves them, and none is kept between forwards (a second image is converted
    afresh, not served stale)."""
    torch.manual_seed(0)
    model = build_model(compose_config("backbone=mobilenet_v2", f"os={stride}").model, 5)
    randomise_statistics(model)
    prepared = prepare_for_inference(model, fast=True)
    converted = []
    monkeypatch.setattr(prepare, "nchw_copy", lambda x: converted.append(x.shape) or x.contiguous())
    plain = prepare_for_inference(model, fast=False)
    for seed in (1, 2):
        image = torch.randn(2, 3, 65, 65, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            difference = (prepared(image.contiguous(memory_format=torch.channels_last)) - plain(image)).abs().max()
        assert difference.item() <= 1e-4 * max(1.0, plain(image).abs().max().item())
    assert len(converted) == 2 and converted[0][1] == 1280  # once a forward, MobileNetV2's last feature
    assert all(getattr(hook, "source", 0) is None for module in prepared.modules()
               for hook in module._forward_pre_hooks.values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout", ["channels_last", "contiguous", "sliced"])
def test_nchw_copy_is_the_contiguous_tensor(dtype, layout):
    x = torch.randn(3, 70, 9, 11).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "sliced":
        x = x.contiguous(memory_format=torch.channels_last)[:, 5:40]
    copied = nchw_copy(x)
    assert copied.is_contiguous() and copied.dtype == dtype and torch.equal(copied, x.contiguous())
