"""Activation checkpointing: the same outputs, gradients and batch-norm statistics as the plain
model, on every encoder family, with less kept for the backward pass."""

import copy

import pytest
import torch

from deeplab.model.deeplab import DeepLab

# (backbone, input side): timm through smp (ResNet, the aligned Xception-65), smp's own encoders
BACKBONES = [("tu-test_resnet", 64), ("resnet18", 64), ("mobilenet_v2", 64), ("tu-xception65", 65)]
SMALL_HEAD = {"aspp": {"channels": 16}, "decoder": {"channels": 16, "low_level_channels": 8}}


def step(model: DeepLab, images: torch.Tensor) -> tuple[torch.Tensor, int]:
    """One training forward and backward; returns the logits and the bytes saved for backward
    outside the checkpointed blocks (inside them, checkpointing keeps nothing)."""
    saved = []

    def pack(tensor):
        saved.append(tensor.untyped_storage().nbytes() if tensor.device.type != "meta" else 0)
        return tensor

    torch.manual_seed(0)  # the same dropout masks in both models
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        logits = model(images)
    (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits)).sum().backward()
    return logits.detach(), sum(saved)


@pytest.mark.slow
@pytest.mark.parametrize("backbone, side", BACKBONES)
def test_checkpointing_changes_memory_not_results(backbone, side):
    torch.manual_seed(1)
    plain = DeepLab(5, backbone=backbone, **SMALL_HEAD).train()
    checkpointed = copy.deepcopy(plain)
    blocks = checkpointed.set_activation_checkpointing()
    assert blocks >= 4
    assert list(checkpointed.state_dict()) == list(plain.state_dict())  # checkpoints stay interchangeable
    images = torch.randn(2, 3, side, side)
    logits, plain_bytes = step(plain, images)
    checkpointed_logits, checkpointed_bytes = step(checkpointed, images)
    torch.testing.assert_close(checkpointed_logits, logits, rtol=0, atol=1e-5)
    # (parameter names gain the wrapper's part; their order, which optimizer states follow, does not change)
    params = {n.replace("._checkpoint_wrapped_module", ""): p for n, p in checkpointed.named_parameters()}
    assert list(params) == [n for n, _ in plain.named_parameters()]
    for name, param in plain.named_parameters():
        torch.testing.assert_close(params[name].grad, param.grad, rtol=1e-4, atol=1e-5, msg=name)
    # batch norm saw each batch once, not a second time when the blocks ran again
    for (name, ours), theirs in zip(checkpointed.state_dict().items(), plain.state_dict().values(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6, msg=name)
    assert checkpointed_bytes < 0.6 * plain_bytes


def test_a_copy_and_a_redilated_model_stay_checkpointed():
    torch.manual_seed(1)
    model = DeepLab(5, backbone="tu-test_resnet", **SMALL_HEAD)
    blocks = model.set_activation_checkpointing()
    copied = copy.deepcopy(model)
    with torch.no_grad():
        for param in copied.parameters():
            param.zero_()
    images = torch.randn(1, 3, 64, 64)
    model.eval()
    before = model(images)
    assert not torch.equal(copied.eval()(images), before)  # the copy runs its own weights, not the original's
    model.set_output_stride(8)
    assert sum(type(m).__name__ == "CheckpointWrapper" for m in model.modules()) == blocks
    with pytest.raises(ValueError, match="cannot be turned off"):
        model.set_activation_checkpointing(False)
