"""The memory predictor, counted on fake tensors, against what a real CPU step saves and holds."""

from functools import partial

import pytest
import torch
import torch.nn.functional as F

from deeplab.inference.memory import PRECISIONS, largest_batch, step_memory, total_bytes
from deeplab.model.deeplab import DeepLab

SMALL_HEAD = {"aspp": {"channels": 16}, "decoder": {"channels": 16, "low_level_channels": 8}}


def build(backbone: str, checkpointing: bool) -> DeepLab:
    torch.manual_seed(0)
    model = DeepLab(5, backbone=backbone, **SMALL_HEAD)
    if checkpointing:
        model.set_activation_checkpointing()
    return model


def real_step(model: DeepLab, batch: int, side: int, precision: str, optimizer) -> dict:
    """A real CPU step: the bytes saved for backward (each storage once, by its address; the
    model's own tensors left out), then the gradients and the optimizer's state after the step."""
    autocast, dtype = PRECISIONS[precision]
    model = model.to(dtype).train()
    held = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    saved = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in held:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    images = torch.randn(batch, 3, side, side).to(dtype)
    masks = torch.randint(0, 5, (batch, side, side))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        loss = F.cross_entropy(model(images).float(), masks, ignore_index=255)
    activations = sum(saved.values())
    loss.backward()
    opt = optimizer(list(model.parameters()))
    opt.step()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())
    return {"activations": activations, "grads": grads,
            "optimizer": sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
                             if isinstance(t, torch.Tensor))}


@pytest.mark.slow
@pytest.mark.parametrize("backbone, precision, checkpointing", [
    ("tu-test_resnet", "32-true", False), ("tu-test_resnet", "bf16-mixed", False), ("tu-test_resnet", "32-true", True),
    ("resnet18", "bf16-mixed", True), ("mobilenet_v2", "bf16-true", False)])
@pytest.mark.parametrize("optimizer", [partial(torch.optim.SGD, lr=0.01, momentum=0.9),
                                       partial(torch.optim.AdamW, lr=1e-3)], ids=["sgd", "adamw"])
def test_the_prediction_matches_a_real_step(backbone, precision, checkpointing, optimizer):
    side, batch = 96, 3  # a batch the prediction was not counted at (it counts 2 and 4)
    predicted = step_memory(partial(build, backbone, checkpointing), (side, side), 3, precision, optimizer)
    real = real_step(build(backbone, checkpointing), batch, side, precision, optimizer)
    expected = predicted["activations_fixed"] + batch * predicted["activations_per_image"]
    assert abs(expected - real["activations"]) <= 0.05 * real["activations"], (expected, real["activations"])
    assert predicted["grads"] == real["grads"] and predicted["optimizer"] == real["optimizer"] > 0
    params = sum(p.numel() for p in build(backbone, checkpointing).parameters())
    assert predicted["params"] == params * PRECISIONS[precision][1].itemsize


def test_checkpointing_and_bf16_shrink_the_activations_and_the_budget_gives_the_batch():
    counts = {(precision, ckpt): step_memory(partial(build, "resnet18", ckpt), (129, 129), 3, precision)
              for precision in ("32-true", "bf16-mixed") for ckpt in (False, True)}
    per_image = {key: value["activations_per_image"] for key, value in counts.items()}
    assert per_image[("32-true", True)] < 0.7 * per_image[("32-true", False)]
    assert per_image[("bf16-mixed", False)] < 0.7 * per_image[("32-true", False)]
    memory = counts[("32-true", False)]
    budget = total_bytes(memory, 10) + memory["activations_per_image"] // 2
    assert largest_batch(memory, budget) == 10
    assert largest_batch(memory, total_bytes(memory, 0) - 1) == 0
    with pytest.raises(ValueError, match="precision='64' is not allowed"):
        step_memory(partial(build, "resnet18", False), (64, 64), 3, "64")
