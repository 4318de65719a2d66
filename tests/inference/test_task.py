"""The binary and multilabel tasks' masks and scores against independent NumPy references on
fixed masks: the foreground scores, the per-label scores, the threshold sweep and the per-image counts."""

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from deeplab.evaluation.labels import BINS, LabelCounts, ThresholdSweep
from deeplab.inference.metrics import LabelMetrics, SegmentationMetrics, foreground_scores
from deeplab.inference.multiscale import predict_probs
from deeplab.inference.task import Task, task_of

VOID = 255


def scores(truth: np.ndarray, pred: np.ndarray) -> dict:
    """IoU, Dice, precision, recall of the foreground (1) where truth is not void, by counting."""
    keep = truth != VOID
    t, p = truth[keep] == 1, pred[keep] == 1
    tp, fp, fn = np.sum(t & p), np.sum(~t & p), np.sum(t & ~p)
    return {"fg_IoU": tp / (tp + fp + fn), "Dice": 2 * tp / (2 * tp + fp + fn), "precision": tp / (tp + fp),
            "recall": tp / (tp + fn)}


def fixed_masks(shape=(4, 30, 40), seed=0):
    rng = np.random.default_rng(seed)
    truth = (rng.random(shape) < 0.3).astype(np.int64)
    truth[rng.random(shape) < 0.1] = VOID
    pred = np.where(rng.random(shape) < 0.75, np.clip(truth, 0, 1), rng.integers(0, 2, shape))
    return truth, pred


def test_foreground_scores_match_numpy():
    truth, pred = fixed_masks()
    metric = SegmentationMetrics(2, ignore_index=VOID)
    for t, p in zip(truth, pred, strict=True):  # image by image: one matrix over the set
        metric.update(torch.from_numpy(p[None]), torch.from_numpy(t[None]))
    ours = foreground_scores(metric.compute()["confmat"])
    for key, value in scores(truth, pred).items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


def test_foreground_scores_without_foreground_are_nan_not_zero():
    ours = foreground_scores(torch.tensor([[10, 0], [0, 0]]))
    assert all(np.isnan(v) for v in ours.values())


def test_label_metrics_match_numpy_per_label():
    truth, pred = fixed_masks((3, 2, 20, 25), seed=1)  # (images, labels, H, W)
    truth[:, 1][truth[:, 0] == VOID] = 0  # void on one label's mask only
    metric = LabelMetrics(2, ignore_index=VOID)
    metric.update(torch.from_numpy(pred), torch.from_numpy(truth))
    result = metric.compute()
    for label in range(2):
        expected = scores(truth[:, label], pred[:, label])
        assert result["per_label_iou"][label].item() == pytest.approx(expected["fg_IoU"], abs=1e-9)
        assert result["per_label_f1"][label].item() == pytest.approx(expected["Dice"], abs=1e-9)
        assert result["per_label_precision"][label].item() == pytest.approx(expected["precision"], abs=1e-9)
        assert result["per_label_recall"][label].item() == pytest.approx(expected["recall"], abs=1e-9)
    assert result["mIoU"].item() == pytest.approx(result["per_label_iou"].mean().item())


def test_label_counts_match_the_whole_set_metric():
    truth, pred = fixed_masks((3, 2, 20, 25), seed=2)
    counts = LabelCounts(VOID)
    counts.update(torch.from_numpy(pred), torch.from_numpy(truth), ["a", "b", "c"])
    tp, fp, fn = counts.arrays()
    metric = LabelMetrics(2, ignore_index=VOID)
    metric.update(torch.from_numpy(pred), torch.from_numpy(truth))
    iou = tp.sum(0) / (tp.sum(0) + fp.sum(0) + fn.sum(0))
    assert np.allclose(iou, metric.compute()["per_label_iou"].numpy())
    assert counts.names == ["a", "b", "c"]


def test_threshold_sweep_finds_the_best_f1_by_brute_force():
    rng = np.random.default_rng(3)
    truth = (rng.random((2, 40, 40)) < 0.2).astype(np.int64)
    probs = np.clip(0.35 * truth + rng.random(truth.shape) * 0.7, 0, 0.999).astype(np.float32)
    truth[0, :3] = VOID
    sweep = ThresholdSweep(torch.device("cpu"))
    sweep.update(torch.from_numpy(probs), torch.from_numpy(truth), VOID)
    best = sweep.best()
    keep = truth != VOID

    def f1(threshold):
        # a probability in bin k counts as above thresholds up to k / BINS, as the histogram does
        pred = np.floor(probs[keep] * BINS) >= round(threshold * BINS)
        t = truth[keep] == 1
        tp, fp, fn = np.sum(t & pred), np.sum(~t & pred), np.sum(t & ~pred)
        return 2 * tp / (2 * tp + fp + fn)

    brute = max(((k / BINS, f1(k / BINS)) for k in range(1, BINS)), key=lambda item: item[1])
    assert best["threshold"] == pytest.approx(brute[0])
    assert best["F1"] == pytest.approx(brute[1])


def test_task_masks_follow_the_threshold():
    probs = torch.tensor([0.2, 0.5, 0.51, 0.9]).view(1, 1, 2, 2)
    assert Task("binary", 0.5).classes(probs).tolist() == [[[0, 0], [1, 1]]]
    assert Task("binary", 0.1).classes(probs).tolist() == [[[1, 1], [1, 1]]]
    labels = torch.cat([probs, 1 - probs], dim=1)
    assert Task("multilabel", 0.4).classes(labels).shape == (1, 2, 2, 2)
    assert Task().classes(labels).tolist() == [[[1, 0], [0, 0]]]  # argmax; 0.5 vs 0.5 ties go to class 0


def test_task_of_stored_configs():
    assert task_of(OmegaConf.create({"data": {}})).name == "multiclass"  # written before tasks existed
    binary = OmegaConf.create({"task": {"name": "binary", "threshold": 0.3}})
    assert task_of(binary) == Task("binary", 0.3)
    assert task_of(binary, threshold=0.7).threshold == 0.7  # eval.threshold replaces the stored one
    assert Task("binary").out_channels(2) == 1 and Task("multilabel").out_channels(3) == 3


def test_sigmoid_probabilities_are_averaged_over_scales_and_flips():
    class Column(torch.nn.Module):
        def forward(self, x):
            return torch.linspace(-3, 3, x.shape[3]).expand(x.shape[0], 1, x.shape[2], x.shape[3])

    images = torch.zeros(1, 3, 9, 11)
    single = predict_probs(Column(), images, activation="sigmoid")
    assert torch.allclose(single, torch.linspace(-3, 3, 11).sigmoid().expand(1, 1, 9, 11), atol=1e-6)
    flipped = predict_probs(Column(), images, flip=True, activation="sigmoid")
    assert torch.allclose(flipped, torch.full_like(flipped, 0.5), atol=1e-6)  # sigmoid(x) + sigmoid(-x) = 1
