"""Whole-image inference on the network's grid, sliding windows, and the official scaling."""

import pytest
import torch

from deeplab.inference.multiscale import grid_size, padded_logits, predict_logits, predict_probs
from deeplab.model import DeepLab


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DeepLab(num_classes=4, backbone="resnet18", output_stride=16, aspp={"rates": (6, 12, 18)},
                   decoder={"low_level_channels": 48, "channels": 64, "num_convs": 2, "separable": True}).eval()


def test_whole_image_pads_to_the_grid_and_crops_back(model):
    images = torch.randn(2, 3, 100, 70)
    assert grid_size((100, 70), 16) == (113, 81)
    padded = torch.nn.functional.pad(images, (0, 11, 0, 13))
    with torch.no_grad():
        logits = padded_logits(model, images)
        expected = model(padded)[:, :, :100, :70]
        on_grid = torch.randn(1, 3, 97, 65)  # 6 * 16 + 1 by 4 * 16 + 1: nothing to pad
        assert torch.equal(padded_logits(model, on_grid), model(on_grid))
    assert logits.shape == (2, 4, 100, 70)
    assert torch.equal(logits, expected)


def test_slide_equals_whole_when_the_window_covers_the_image(model):
    images = torch.randn(1, 3, 97, 131)
    with torch.no_grad():
        whole = predict_logits(model, images, mode="whole")
        slide = predict_logits(model, images, mode="slide", window=[128, 160], stride=[64, 64])
    assert (slide - whole).abs().max() <= 1e-4
    probs_whole = predict_probs(model, images, scales=[0.75, 1.0], flip=True)
    probs_slide = predict_probs(model, images, scales=[0.75, 1.0], flip=True, mode="slide", window=[200, 200],
                                stride=[100, 100])
    assert (probs_slide - probs_whole).abs().max() <= 1e-4


def test_slide_with_small_windows_covers_every_pixel(model):
    images = torch.randn(1, 3, 97, 131)
    calls = []
    handle = model.register_forward_hook(lambda module, args, out: calls.append(tuple(args[0].shape[2:])))
    try:
        with torch.no_grad():
            slide = predict_logits(model, images, mode="slide", window=[64, 64], stride=[48, 48])
            whole = predict_logits(model, images, mode="whole")
    finally:
        handle.remove()
    # rows start at 0, 33 (flush with the bottom); columns at 0, 48, 67: six windows, then one whole pass
    assert len(calls) == 7 and calls[:6] == [(65, 65)] * 6
    assert slide.shape == whole.shape == (1, 4, 97, 131) and torch.isfinite(slide).all()
    assert not torch.allclose(slide, whole, atol=1e-3)  # windows see less context: a real difference


def test_bad_mode_is_named(model):
    with pytest.raises(ValueError, match="eval.mode='tiles' is not allowed; allowed: whole, slide"):
        predict_logits(model, torch.randn(1, 3, 33, 33), mode="tiles")
