"""Deterministic synthetic sets for the binary and multilabel tasks, written in data=folder's
layout (images/, masks/, splits/), once per set of arguments like the multiclass set.

binary: thin curved structures (membranes, vessels, cracks) a few pixels wide on a textured
background with thick distractor blobs of the same colours, so a pixel's colour does not say its
label and the decoder's boundary detail matters; masks are stored 0/255, as such data usually is
(data.label_map={255: 1} reads them).
multilabel: two overlapping labels, `vegetation` (a speckled green-brown region) and `flooded` (a
region under rippled blue water); where both hold, the water covers the vegetation. One 0/1 mask
a label, masks/<label>/<name>.png."""

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from deeplab.data.synthetic import _background

BINARY_CLASSES = ("background", "structure")
MULTILABEL_CLASSES = ("vegetation", "flooded")
GENERATOR_VERSION = 1


def _curve(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random path across the image as (x, y) points: a walk whose direction turns slowly."""
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    angle, turn = rng.uniform(0, 2 * np.pi), 0.0
    points = []
    for _ in range(int(1.5 * max(height, width) / 3)):
        points.append((x, y))
        turn = 0.85 * turn + rng.normal(0, 0.06)
        angle += turn
        x, y = x + 3 * np.cos(angle), y + 3 * np.sin(angle)
    return np.round(np.array(points)).astype(np.int32)


def render_binary(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One image (H, W, 3 uint8) and its 0/255 mask of thin curves."""
    image = _background(rng, height, width) + rng.normal(0, 6, size=(height, width, 3))
    ink = rng.uniform(0, 70, size=3) if image.mean() > 110 else rng.uniform(185, 255, size=3)
    blobs = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(1, 4)):  # thick shapes of the curves' colour: not a structure
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(8, 22)), int(rng.integers(8, 22)))
        cv2.ellipse(blobs, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, thickness=-1)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(2, 5)):
        cv2.polylines(mask, [_curve(rng, height, width)], False, 1, thickness=int(rng.integers(3, 7)))
    drawn = (blobs | mask).astype(bool)
    image[drawn] = ink + rng.normal(0, 12, size=(int(drawn.sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8), (mask * 255).astype(np.uint8)


def _region(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A blob of a quarter to a half of the image: a few overlapping ellipses."""
    region = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(1, 4)):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.uniform(0.15, 0.4) * width), int(rng.uniform(0.15, 0.4) * height))
        cv2.ellipse(region, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, thickness=-1)
    return region.astype(bool)


def render_multilabel(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One image and its labels (H, W, 2) of 0/1: vegetation, flooded."""
    image = _background(rng, height, width) * 0.6 + 60
    vegetation, flooded = _region(rng, height, width), _region(rng, height, width)
    green = np.array([50, 130, 40]) + rng.uniform(-20, 20, size=3)
    grains = rng.normal(0, 35, size=((height + 1) // 2, (width + 1) // 2, 1)).repeat(2, 0).repeat(2, 1)
    image[vegetation] = (green + grains[:height, :width])[vegetation]
    yy, xx = np.mgrid[0:height, 0:width]
    ripples = 18 * np.sin(yy / rng.uniform(2.0, 3.5) + np.sin(xx / 9.0))[..., None]
    water = np.array([40, 90, 200]) + ripples
    image[flooded] = 0.45 * image[flooded] + 0.55 * water[flooded]
    labels = np.stack([vegetation, flooded], axis=-1).astype(np.uint8)
    return np.clip(image, 0, 255).astype(np.uint8), labels


def _write(root: Path, params: dict, render, label_names: list[str] | None) -> Path:
    stamp = root / "synthetic.json"
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        return root
    images, masks, splits = root / "images", root / "masks", root / "splits"
    for folder in [images, splits] + ([masks / n for n in label_names] if label_names else [masks]):
        folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(params["seed"])
    for split in ("train", "val"):
        names = []
        for index in range(params[f"num_{split}"]):
            name = f"{split}_{index:05d}"
            height, width = (int(v) for v in rng.integers(params["min_side"], params["max_side"] + 1, size=2))
            image, mask = render(rng, height, width)
            Image.fromarray(image).save(images / f"{name}.jpg", quality=95)
            if label_names:
                for band, label in enumerate(label_names):
                    Image.fromarray(mask[..., band], mode="L").save(masks / label / f"{name}.png")
            else:
                Image.fromarray(mask, mode="L").save(masks / f"{name}.png")
            names.append(name)
        (splits / f"{split}.txt").write_text("\n".join(names) + "\n")
    stamp.write_text(json.dumps(params))
    return root


def make_synthetic_binary(root: str | Path, num_train: int = 600, num_val: int = 60, min_side: int = 112,
                          max_side: int = 192, seed: int = 0) -> Path:
    """The binary set under `root`: images/*.jpg, masks/*.png (0/255), splits/{train,val}.txt."""
    params = dict(kind="binary", num_train=num_train, num_val=num_val, min_side=min_side, max_side=max_side,
                  seed=seed, version=GENERATOR_VERSION)
    return _write(Path(root), params, render_binary, None)


def make_synthetic_multilabel(root: str | Path, num_train: int = 300, num_val: int = 40, min_side: int = 96,
                              max_side: int = 160, seed: int = 0) -> Path:
    """The multilabel set under `root`: images/*.jpg, masks/<label>/*.png (0/1), splits/."""
    params = dict(kind="multilabel", num_train=num_train, num_val=num_val, min_side=min_side, max_side=max_side,
                  seed=seed, version=GENERATOR_VERSION)
    return _write(Path(root), params, render_multilabel, list(MULTILABEL_CLASSES))
