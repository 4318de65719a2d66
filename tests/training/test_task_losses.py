"""The sigmoid losses against torch's and smp's own, with void pixels left out."""

import pytest
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss, FocalLoss

from deeplab.training.losses import BCEDice, BinaryCrossEntropy, Focal

VOID = 255


def batch(labels: int | None, seed: int = 0):
    """Logits and targets: binary (N, H, W) targets for one channel, multilabel (N, L, H, W)."""
    generator = torch.Generator().manual_seed(seed)
    channels = 1 if labels is None else labels
    logits = torch.randn(2, channels, 6, 7, generator=generator)
    shape = (2, 6, 7) if labels is None else (2, channels, 6, 7)
    target = torch.randint(0, 2, shape, generator=generator)
    target[torch.rand(shape, generator=generator) < 0.2] = VOID
    return logits, target


@pytest.mark.parametrize("labels", [None, 3])
def test_bce_is_torchs_over_the_labelled_pixels(labels):
    logits, target = batch(labels)
    full = target if labels else target[:, None]
    keep = full != VOID
    expected = F.binary_cross_entropy_with_logits(logits[keep], full[keep].float(), pos_weight=torch.tensor(2.5))
    assert BinaryCrossEntropy(pos_weight=2.5)(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_bce_dice_is_the_sum_of_both():
    logits, target = batch(None, seed=1)
    dice = DiceLoss(mode="binary", from_logits=True, ignore_index=VOID)(logits, target)
    loss = BCEDice(dice_weight=0.5)(logits, target)
    assert loss.item() == pytest.approx((BinaryCrossEntropy()(logits, target) + 0.5 * dice).item(), rel=1e-6)


def test_binary_focal_is_smps():
    logits, target = batch(None, seed=2)
    expected = FocalLoss(mode="binary", ignore_index=VOID)(logits, target)
    assert Focal(mode="binary")(logits, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_multilabel_focal_leaves_void_out():
    logits, target = batch(2, seed=3)
    loss = Focal(mode="multilabel")(logits, target)
    changed = logits.clone()
    changed[target == VOID] += 100  # what the network says on void pixels does not count
    assert Focal(mode="multilabel")(changed, target).item() == pytest.approx(loss.item(), rel=1e-6)
    per_label = [FocalLoss(mode="binary", ignore_index=VOID)(logits[:, c], target[:, c]) for c in range(2)]
    counts = [(target[:, c] != VOID).sum() for c in range(2)]
    weighted = sum(v * n for v, n in zip(per_label, counts, strict=True)) / sum(counts)
    assert loss.item() == pytest.approx(weighted.item(), rel=1e-5)


def test_binary_focal_mining_keeps_the_hardest_pixels():
    logits, target = batch(None, seed=4)
    mined = Focal(mode="binary", top_k_percent_pixels=0.25)(logits, target)
    assert mined.item() > Focal(mode="binary")(logits, target).item()  # the hardest quarter weighs more


def test_weights_that_train_py_counts_are_refused_here():
    with pytest.raises(ValueError, match="loss.pos_weight=balanced"):
        BinaryCrossEntropy(pos_weight="balanced")
    with pytest.raises(ValueError, match="task=multiclass"):
        Focal(mode="binary", class_weights=[1.0, 2.0])
