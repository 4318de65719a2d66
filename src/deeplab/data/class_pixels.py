"""Pixels of each class in a split, counted once and cached beside the data: what class weighting
(loss.class_weights=median_freq, ...) is computed from."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deeplab.data.base import SegmentationDataset
from deeplab.errors import DatasetError

WEIGHTINGS = ("median_freq", "inverse_freq", "inverse_sqrt_freq")  # loss.class_weights methods
CACHE_DIR = ".deeplab_cache"  # under data.root; the key changes when the list, files or label reading do


@dataclass
class ClassPixels:
    pixels: np.ndarray  # per class: its labelled pixels
    image_pixels: np.ndarray  # per class: the labelled pixels of the images it appears in
    images: int  # masks counted
    cached: Path | None = None  # the cache file it was read from or written to


def count(dataset: SegmentationDataset, num_classes: int, ignore_index: int) -> ClassPixels:
    """Reads every mask of the split once, as training reads it (lookup, colour map)."""
    pixels = np.zeros(num_classes, np.int64)
    image_pixels = np.zeros(num_classes, np.int64)
    images = 0
    for sample in dataset.samples:
        if sample.mask is None:
            continue
        counts = np.bincount(dataset.read_labels(sample.mask).ravel(), minlength=256)
        labelled = np.delete(counts, ignore_index) if 0 <= ignore_index < 256 else counts
        if labelled[num_classes:].any():
            found = [int(v) for v in np.flatnonzero(counts) if v >= num_classes and v != ignore_index]
            raise DatasetError(f"{sample.mask}: mask values {found} outside 0..{num_classes - 1} and not the void "
                             f"{ignore_index}")
        per_class = counts[:num_classes]
        pixels += per_class
        image_pixels[per_class > 0] += per_class.sum()
        images += 1
    return ClassPixels(pixels, image_pixels, images)


def _key(dataset: SegmentationDataset, num_classes: int, ignore_index: int) -> str:
    """What the counts depend on: each mask file (path, size, modification time) and the way its
    values become labels."""
    digest = hashlib.sha256(json.dumps([type(dataset).__name__, num_classes, ignore_index]).encode())
    for sample in dataset.samples:
        if sample.mask is not None:
            stat = sample.mask.stat()
            digest.update(f"{sample.mask}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    if dataset.lookup is not None:
        digest.update(dataset.lookup.tobytes())
    colors = getattr(dataset, "color_map", None)
    if colors is not None:
        digest.update(colors.codes.tobytes() + colors.labels.tobytes() + str(colors.void).encode())
    return digest.hexdigest()[:16]


def cached_count(dataset: SegmentationDataset, split: str, num_classes: int, ignore_index: int,
                 root: Path) -> ClassPixels:
    """count(), read from `root/.deeplab_cache/` when the same files were counted before, else
    counted and written there (when root is writable: a read-only dataset is counted each time)."""
    path = Path(root) / CACHE_DIR / f"class_pixels_{split}_{_key(dataset, num_classes, ignore_index)}.json"
    if path.is_file():
        stored = json.loads(path.read_text())
        return ClassPixels(np.array(stored["pixels"], np.int64), np.array(stored["image_pixels"], np.int64),
                           stored["images"], cached=path)
    counted = count(dataset, num_classes, ignore_index)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{id(counted)}.partial")
        partial.write_text(json.dumps({"pixels": counted.pixels.tolist(), "image_pixels": counted.image_pixels.tolist(),
                                       "images": counted.images}))
        partial.replace(path)  # whole or absent: processes counting at once each write a complete file
        counted.cached = path
    except OSError:
        pass  # counted.cached stays None: the caller says the counts were not kept
    return counted


def class_weights(pixels: np.ndarray, image_pixels: np.ndarray, method: str) -> list[float]:
    """Per-class loss weights from a split's pixel counts; a class with no pixels gets 0 (it is
    never a target, so its weight is never used).
    - median_freq (Eigen and Fergus, 2015): freq(c) = pixels of c / pixels of the images c is in;
      weight = median(freq) / freq(c);
    - inverse_freq and inverse_sqrt_freq: 1 / f(c) and 1 / sqrt(f(c)) of the share f(c) of all
      labelled pixels, scaled to average 1 over the classes present."""
    present = pixels > 0
    if not present.any():
        raise ValueError("the training split has no labelled pixels to weight classes by")
    weights = np.zeros(len(pixels))
    if method == "median_freq":
        freq = pixels[present] / image_pixels[present]
        weights[present] = np.median(freq) / freq
    elif method in ("inverse_freq", "inverse_sqrt_freq"):
        share = pixels[present] / pixels.sum()
        raw = 1 / share if method == "inverse_freq" else 1 / np.sqrt(share)
        weights[present] = raw / raw.mean()
    else:
        raise ValueError(f"loss.class_weights={method} is not allowed; allowed: null, a list of numbers, "
                         f"{', '.join(WEIGHTINGS)}")
    return [float(w) for w in weights]
