"""The model on its own: shapes at any input size, output stride, ASPP rates, decoder on/off."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deeplab.model import ASPP, DeepLab, build_encoder, resolve_encoder_name
from deeplab.model.layers import upsample_on_grid

DECODER = {"low_level_channels": 48, "channels": 256, "num_convs": 2, "separable": True}
RATES = {8: (12, 24, 36), 16: (6, 12, 18), 32: (3, 6, 9)}


@pytest.mark.parametrize("output_stride", [8, 16, 32])
@pytest.mark.parametrize("size", [(513, 513), (500, 375)])
def test_logits_at_input_size(output_stride, size):
    with torch.device("meta"):  # shapes at the paper's sizes, without their arithmetic
        model = DeepLab(num_classes=21, backbone="resnet50", output_stride=output_stride,
                        aspp={"rates": RATES[output_stride]}, decoder=DECODER).eval()
        images = torch.randn(1, 3, *size)
    with torch.no_grad():
        features = model.encoder(images)
        logits = model(images)
    assert logits.shape == (1, 21, *size)
    # the deepest feature really is at the requested stride (sides of 16k + 1 images round up)
    assert features[-1].shape[2] == -(-size[0] // output_stride)
    assert features[2].shape[2] == -(-size[0] // 4)


def test_deeplabv3_has_no_decoder():
    model = DeepLab(num_classes=5, backbone="resnet50", decoder=None).eval()
    assert model.decoder is None
    with torch.no_grad():
        assert model(torch.randn(1, 3, 97, 131)).shape == (1, 5, 97, 131)


def test_decoder_layout():
    model = DeepLab(num_classes=5, backbone="resnet50", decoder=DECODER)
    project = model.decoder.project.conv
    assert (project.in_channels, project.out_channels, project.kernel_size) == (256, 48, (1, 1))
    assert len(model.decoder.refine) == 2
    depthwise, pointwise = model.decoder.refine[0].conv_dw, model.decoder.refine[0].conv_pw
    assert depthwise.groups == 256 + 48 and depthwise.kernel_size == (3, 3)
    assert pointwise.out_channels == 256
    # BN and ReLU between depthwise and pointwise, as in the paper
    block = model.decoder.refine[0]
    assert isinstance(block.bn_dw, nn.BatchNorm2d) and isinstance(block.act_dw, nn.ReLU)


def test_aspp_branches_follow_rates():
    aspp = ASPP(2048, channels=256, rates=(6, 12, 18), separable=False, image_pooling=True, dropout=0.1)
    dilations = [b.conv.dilation[0] for b in aspp.branches[1:4]]
    assert dilations == [6, 12, 18]
    assert len(aspp.branches) == 5  # 1x1, three atrous, image pooling
    assert aspp.project.conv.in_channels == 5 * 256
    assert len(ASPP(2048, image_pooling=False).branches) == 4


def test_set_output_stride_keeps_weights_and_scales_rates():
    torch.manual_seed(0)
    model = DeepLab(num_classes=5, backbone="resnet50", output_stride=16, aspp={"rates": (6, 12, 18)},
                    decoder=DECODER).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.set_output_stride(8)
    assert model.aspp.rates == (12, 24, 36)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        assert model.encoder(torch.randn(1, 3, 129, 129))[-1].shape[2] == 17


def test_encoder_names():
    assert resolve_encoder_name("resnet50") == "resnet50"
    assert resolve_encoder_name("xception65") == "tu-xception65"
    assert resolve_encoder_name("tu-resnet101s") == "tu-resnet101s"
    with pytest.raises(ValueError, match="did you mean"):
        resolve_encoder_name("resnet5O")
    with pytest.raises(ValueError, match="output_stride=12 is not allowed"):
        build_encoder("resnet50", output_stride=12)


def test_resnet101_is_deeplab_stem():
    encoder = build_encoder("tu-resnet101s", output_stride=16)
    convs = [m for m in encoder.model.conv1 if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128]


def test_multi_grid_follows_output_stride():
    model = DeepLab(num_classes=5, backbone="tu-resnet101s", output_stride=16, multi_grid=(1, 2, 4))
    assert [b.conv2.dilation[0] for b in model.encoder.model.layer4] == [2, 4, 8]
    model.set_output_stride(8)
    assert [b.conv2.dilation[0] for b in model.encoder.model.layer4] == [4, 8, 16]
    with pytest.raises(ValueError, match="needs 3 values"):
        DeepLab(num_classes=5, backbone="tu-resnet101s", multi_grid=(1, 2))


def test_other_eval_stride_uses_the_same_weights_strictly():
    torch.manual_seed(0)
    trained = DeepLab(num_classes=5, backbone="resnet50", output_stride=16, aspp={"rates": (6, 12, 18)},
                      decoder=DECODER).eval()
    at_eight = DeepLab(num_classes=5, backbone="resnet50", output_stride=8, aspp={"rates": (12, 24, 36)},
                       decoder=DECODER).eval()
    at_eight.load_state_dict(trained.state_dict(), strict=True)  # same parameters, only dilations differ
    images = torch.randn(1, 3, 97, 97)
    with torch.no_grad():
        logits16 = trained(images)
        logits8 = at_eight(images)
        trained.set_output_stride(8)
        switched = trained(images)
    assert not torch.allclose(logits16, logits8, atol=1e-4)
    assert torch.allclose(switched, logits8, atol=1e-5)


@pytest.mark.parametrize("low_level_channels, num_convs, channels", [(8, 1, 256), (64, 3, 128), (32, 2, 256)])
def test_decoder_ablation_knobs(low_level_channels, num_convs, channels):
    """The paper's Tables 1 and 2 vary the projection width and the number and width of 3x3 convs."""
    decoder = {**DECODER, "low_level_channels": low_level_channels, "num_convs": num_convs, "channels": channels}
    model = DeepLab(num_classes=5, backbone="resnet18", decoder=decoder).eval()
    assert model.decoder.project.conv.out_channels == low_level_channels
    assert len(model.decoder.refine) == num_convs
    assert model.decoder.refine[0].conv_dw.in_channels == 256 + low_level_channels
    assert [block.conv_pw.out_channels for block in model.decoder.refine] == [channels] * num_convs
    assert model.classifier.in_channels == channels
    with torch.no_grad():
        assert model(torch.randn(1, 3, 65, 81)).shape == (1, 5, 65, 81)


@pytest.mark.parametrize("depthwise_bn_relu", [True, False])
def test_separable_convs_with_and_without_bn_relu_between(depthwise_bn_relu, tmp_path):
    model = DeepLab(5, "tu-test_resnet", aspp={"depthwise_bn_relu": depthwise_bn_relu},
                    decoder={**DECODER, "depthwise_bn_relu": depthwise_bn_relu})
    blocks = [*model.aspp.branches[1:4], *model.decoder.refine]
    expected = ["conv_dw", *["bn_dw", "act_dw"] * depthwise_bn_relu, "conv_pw", "bn_pw", "act_pw"]
    assert all([name for name, _ in block.named_children()] == expected for block in blocks)
    torch.save(model.state_dict(), tmp_path / "weights.pt")  # keys load strictly into the same architecture
    again = DeepLab(5, "tu-test_resnet", aspp={"depthwise_bn_relu": depthwise_bn_relu},
                    decoder={**DECODER, "depthwise_bn_relu": depthwise_bn_relu})
    again.load_state_dict(torch.load(tmp_path / "weights.pt"))
    with torch.no_grad():
        assert torch.equal(model.eval()(torch.randn(1, 3, 65, 65, generator=torch.Generator().manual_seed(0))),
                           again.eval()(torch.randn(1, 3, 65, 65, generator=torch.Generator().manual_seed(0))))


@pytest.mark.parametrize("factor", [2, 4, 16])
@pytest.mark.parametrize("size", [(7, 9), (8, 8), (1, 5)])
def test_upsampling_keeps_each_feature_pixel_over_its_input_pixel(factor, size):
    """Feature pixel i lands on target pixel factor * i at every size: on a 16k crop (224) as on
    the paper's 16k + 1 (513). align_corners=True over the whole target does that at 16k + 1 only."""
    feature = torch.randn(2, 3, *size, dtype=torch.float64)
    for target in ((factor * size[0], factor * size[1]), (factor * (size[0] - 1) + 1, factor * (size[1] - 1) + 1)):
        up = upsample_on_grid(feature, target, factor)
        assert up.shape[-2:] == target
        assert torch.allclose(up[..., ::factor, ::factor][..., : size[0], : size[1]], feature, rtol=0, atol=1e-12)
        # past the last feature pixel: its value, not an extrapolation
        last_row = factor * (size[0] - 1)
        tail = up[..., last_row:, :]
        assert torch.allclose(tail, up[..., last_row: last_row + 1, :].expand_as(tail), rtol=0, atol=1e-12)
    stretched = F.interpolate(feature, size=(factor * size[0], factor * size[1]), mode="bilinear", align_corners=True)
    if size[0] > 1 and factor > 1:
        assert not torch.allclose(stretched[..., ::factor, ::factor], feature)  # the defect this replaces


@pytest.mark.parametrize("decoder", [None, {"low_level_channels": 8, "channels": 16}])
def test_at_the_papers_sizes_logits_are_the_official_align_corners_ones(decoder):
    """At 16k + 1 sides nothing changes: checkpoints trained and evaluated there give what they gave."""
    model = DeepLab(num_classes=3, backbone="resnet18", aspp={"channels": 16}, decoder=decoder).eval()
    images = torch.randn(1, 3, 65, 97)
    with torch.no_grad():
        features = model.encoder(images)
        x = model.aspp(features[-1])
        if decoder is not None:
            low = features[2]
            x = F.interpolate(x, size=low.shape[2:], mode="bilinear", align_corners=True)
            x = model.decoder.refine(torch.cat([x, model.decoder.project(low)], dim=1))
        expected = F.interpolate(model.classifier(x), size=(65, 97), mode="bilinear", align_corners=True)
        assert torch.allclose(model(images), expected, atol=1e-6)


def test_the_head_keeps_pytorchs_default_initialisation():
    # Measured on CamVid (docs/performance.md, "Learning against a plain loop"): initialising the ASPP,
    # decoder and classifier as the official code does (depthwise std 0.33, pointwise 0.06, logits 0.01)
    # or as smp does (Kaiming for the convs, Xavier for the logits) cost 3.1-3.2 points of test mIoU on
    # seed 42 against PyTorch's default (uniform, bound 1 / sqrt(fan_in)): larger weights before batch
    # norm learn more slowly at the same learning rate. A new init for these layers must beat that.
    torch.manual_seed(0)
    model = DeepLab(5, "tu-test_resnet", decoder={})
    head = [(name, m) for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and not name.startswith("encoder")]
    assert len(head) > 10
    for name, conv in head:
        fan_in = conv.weight[0].numel()
        bound = 1 / fan_in ** 0.5
        assert conv.weight.abs().max() <= bound, name
        if conv.weight.numel() >= 1000:  # enough weights for their spread to say which distribution
            assert abs(conv.weight.std().item() - bound / 3 ** 0.5) < 0.1 * bound / 3 ** 0.5, name


@pytest.mark.parametrize("stride, rates", [(8, (12, 24, 36)), (16, (6, 12, 18)), (32, (3, 6, 9))])
def test_the_aspp_takes_the_papers_rates_for_the_output_stride_unless_given(stride, rates):
    model = DeepLab(num_classes=3, backbone="resnet18", output_stride=stride)
    assert model.aspp.rates == rates
    given = DeepLab(num_classes=3, backbone="resnet18", output_stride=stride, aspp={"rates": [2, 4, 6]})
    assert given.aspp.rates == (2, 4, 6)
