"""Per-image results and a bootstrap interval for mIoU, from each image's true positives, false
positives and false negatives per class (its confusion matrix's diagonal, column and row sums):
summed over any set of images they give that set's IoUs, so resampling needs no re-inference."""

import warnings

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_confusion_matrix


class ImageCounts:
    """tp, fp and fn per class of every image seen, in order."""

    def __init__(self, num_classes: int, ignore_index: int):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.names: list[str] = []
        self.tp: list[np.ndarray] = []
        self.fp: list[np.ndarray] = []
        self.fn: list[np.ndarray] = []

    def update(self, pred: torch.Tensor, target: torch.Tensor, names) -> None:
        for image_pred, image_target, name in zip(pred, target, names, strict=True):
            confmat = multiclass_confusion_matrix(image_pred, image_target, self.num_classes,
                                                  ignore_index=self.ignore_index).cpu().numpy().astype(np.int64)
            tp = np.diag(confmat)
            self.names.append(str(name))
            self.tp.append(tp)
            self.fp.append(confmat.sum(axis=0) - tp)
            self.fn.append(confmat.sum(axis=1) - tp)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.stack(self.tp), np.stack(self.fp), np.stack(self.fn)


def miou(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """mIoU over the classes present in truth or prediction, along the last axis (NaN: none)."""
    union = tp + fp + fn
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    with warnings.catch_warnings():  # an image with no labelled pixel has no mIoU: NaN, said by the caller
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(iou, axis=-1)


def per_image_rows(counts: ImageCounts, class_names: list[str]) -> list[dict]:
    """One row an image: its mIoU and pixel accuracy, the classes in its truth and prediction, and
    its share of each class's errors (false positives and negatives) over the whole split."""
    tp, fp, fn = counts.arrays()
    errors = fp + fn
    totals = np.maximum(errors.sum(axis=0), 1)
    rows = []
    for i, name in enumerate(counts.names):
        labelled = tp[i].sum() + fn[i].sum()
        row = {"image": name, "mIoU": float(miou(tp[i], fp[i], fn[i])),
               "pixel_acc": float(tp[i].sum() / labelled) if labelled else float("nan"),
               "classes_true": " ".join(class_names[c] for c in np.flatnonzero(tp[i] + fn[i])),
               "classes_pred": " ".join(class_names[c] for c in np.flatnonzero(tp[i] + fp[i]))}
        row.update({f"error_share/{n}": float(errors[i, c] / totals[c]) for c, n in enumerate(class_names)})
        rows.append(row)
    return rows


def lowest_first(scores: np.ndarray, number: int) -> np.ndarray:
    """The indices of the `number` lowest scores, lowest first (NaN, an image without labels, last)."""
    return np.argsort(np.where(np.isnan(scores), np.inf, scores), kind="stable")[:number]


def resample(images: int, resamples: int, seed: int = 0) -> np.ndarray:
    """(resamples, images): how often each image is drawn in each bootstrap resample; times an
    (images, C) count array, it gives each resample's summed counts."""
    return np.random.default_rng(seed).multinomial(images, np.full(images, 1 / images), size=resamples)


def bootstrap_interval(counts: ImageCounts, resamples: int, seed: int = 0) -> list[float]:
    """The 2.5th and 97.5th percentiles of mIoU over `resamples` draws of the images with
    replacement (each draw's IoUs from its summed counts)."""
    tp, fp, fn = counts.arrays()
    draws = resample(len(tp), resamples, seed)
    values = miou(draws @ tp, draws @ fp, draws @ fn)
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return [float(low), float(high)]
