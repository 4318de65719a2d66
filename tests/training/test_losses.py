"""Class weights (given, or computed from the training split's pixel counts) and the official
DeepLab code's hard-pixel mining, against hand computations."""

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from deeplab.builders.checkpoint import CONFIG_KEY, load_checkpoint
from deeplab.data import class_pixels
from deeplab.training.losses import CrossEntropy, Focal

from ..conftest import SMALL, TINY_NET, run_entry

torch.manual_seed(0)
LOGITS = torch.randn(2, 3, 4, 5)
TARGET = torch.randint(0, 3, (2, 4, 5))
TARGET[0, 0, :3] = 255  # void pixels count nowhere
WEIGHTS = [0.5, 2.0, 1.25]


def hand_ce(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-pixel cross-entropy, 0 on void."""
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    safe = np.where(target == 255, 0, target)
    losses = -np.take_along_axis(log_p, safe[:, None], axis=1)[:, 0]
    return np.where(target == 255, 0.0, losses)


def hand_focal(logits: np.ndarray, target: np.ndarray, gamma: float = 2.0) -> np.ndarray:
    """Per-pixel mean over the classes of the one-vs-rest sigmoid focal term, 0 on void."""
    terms = []
    for c in range(logits.shape[1]):
        x, t = logits[:, c], (target == c).astype(float)
        log_pt = -(np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x))))  # -BCE with logits
        terms.append(-((1 - np.exp(log_pt)) ** gamma) * log_pt)
    return np.where(target == 255, 0.0, np.mean(terms, axis=0))


def hand_top_k(losses: np.ndarray, target: np.ndarray, k: float, weights=None) -> float:
    """train_utils.py of the official code: weighted pixel losses, the top k of all pixels, their
    sum over how many are not zero."""
    if weights is not None:
        losses = losses * np.array(weights)[np.where(target == 255, 0, target)]
    kept = np.sort(losses.ravel())[::-1][: int(k * losses.size)]
    return kept.sum() / np.count_nonzero(kept)


@pytest.mark.parametrize("loss_class, pixel_losses", [(CrossEntropy, hand_ce), (Focal, hand_focal)])
@pytest.mark.parametrize("weights", [None, WEIGHTS])
def test_top_k_percent_pixels_is_the_official_computation(loss_class, pixel_losses, weights):
    loss = loss_class(class_weights=weights, top_k_percent_pixels=0.25)
    expected = hand_top_k(pixel_losses(LOGITS.double().numpy(), TARGET.numpy()), TARGET.numpy(), 0.25, weights)
    assert loss(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-5)


def test_the_mining_warm_up_goes_linearly_from_all_pixels():
    loss = CrossEntropy(top_k_percent_pixels=0.25, hard_example_mining_step=100)
    losses = hand_ce(LOGITS.double().numpy(), TARGET.numpy())
    for step, k in ((0, 1.0), (50, 0.625), (100, 0.25), (400, 0.25)):
        loss.step = step
        assert loss(LOGITS, TARGET).item() == pytest.approx(hand_top_k(losses, TARGET.numpy(), k), rel=1e-5), step


def test_without_mining_the_weighted_loss_is_torchs_mean():
    losses = hand_ce(LOGITS.double().numpy(), TARGET.numpy())
    w = np.array(WEIGHTS)[np.where(TARGET.numpy() == 255, 0, TARGET.numpy())] * (TARGET.numpy() != 255)
    assert CrossEntropy(class_weights=WEIGHTS)(LOGITS, TARGET).item() == pytest.approx((w * losses).sum() / w.sum(),
                                                                                    rel=1e-5)
    plain = CrossEntropy()(LOGITS, TARGET).item()
    assert plain == pytest.approx(losses.sum() / (TARGET.numpy() != 255).sum(), rel=1e-5)


def median_freq(masks: list[np.ndarray], num_classes: int) -> np.ndarray:
    """Eigen and Fergus: freq(c) = pixels of c over the pixels of the images holding c."""
    pixels, image_pixels = np.zeros(num_classes), np.zeros(num_classes)
    for mask in masks:
        counts = np.array([(mask == c).sum() for c in range(num_classes)])
        pixels += counts
        image_pixels[counts > 0] += counts.sum()
    freq = pixels / image_pixels
    return np.median(freq) / freq


@pytest.mark.slow
def test_median_freq_weights_are_counted_once_printed_and_stored(tmp_path, small_synthetic, capsys, monkeypatch):
    args = ("train.py", f"paths.data_dir={small_synthetic}", *SMALL, *TINY_NET, "trainer.max_steps=1",
            "loss.class_weights=median_freq")
    code, stderr, stdout = run_entry(*args, f"hydra.run.dir={tmp_path / 'a'}", capsys=capsys, monkeypatch=monkeypatch,
                                     stdout=True)
    assert code == 0, stderr[-3000:]
    root = small_synthetic / "synthetic_voc"
    names = (root / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
    masks = [np.array(Image.open(root / "SegmentationClass" / f"{n}.png")) for n in names]
    expected = median_freq(masks, 5)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert list(summary["class_weights"].values()) == pytest.approx(expected.tolist(), rel=1e-12)
    stored = OmegaConf.create(load_checkpoint(tmp_path / "a" / "checkpoints" / "last.ckpt")[CONFIG_KEY])
    assert list(stored.loss.class_weights) == pytest.approx(expected.tolist(), rel=1e-12)
    line = next(x for x in stdout.splitlines() if x.startswith("loss.class_weights"))
    assert line.startswith(f"loss.class_weights (median_freq of {len(names)} masks of train, cached in {root}/")
    assert line.endswith(", ".join(f"{n} {w:.4g}" for n, w in zip(summary["class_weights"], expected, strict=True)))

    def no_recount(*_):
        raise AssertionError("counted again")

    monkeypatch.setattr(class_pixels, "count", no_recount)  # the second run reads the cache
    code, stderr = run_entry(*args, f"hydra.run.dir={tmp_path / 'b'}", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-3000:]
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["class_weights"] == summary["class_weights"]


def test_focal_loss_trains_with_computed_weights_and_mining(tmp_path, small_synthetic, capsys, monkeypatch):
    code, stderr = run_entry("train.py", f"paths.data_dir={small_synthetic}", *SMALL, *TINY_NET, "loss=focal",
                             "loss.class_weights=inverse_sqrt_freq", "loss.top_k_percent_pixels=0.25",
                             "loss.hard_example_mining_step=2", "trainer.max_steps=3",
                             f"hydra.run.dir={tmp_path / 'run'}", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-3000:]
    weights = json.loads((tmp_path / "run" / "summary.json").read_text())["class_weights"]
    assert len(weights) == 5 and np.mean(list(weights.values())) == pytest.approx(1.0)
