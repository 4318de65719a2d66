"""A deterministic synthetic segmentation set written in the PASCAL VOC layout.

Scenes hold several objects at varied scales that occlude each other, with a void (255) band
along object borders as in VOC. Colour carries no class information: every object's colours
are drawn from the same distribution, so classes are told apart by texture (stripes, checker,
speckle against a smooth background) and by shape (a filled blob and a ring share the speckle).
"""

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from deeplab.data.palette import voc_palette

CLASS_NAMES = ("background", "blob", "ring", "stripes", "checker")
VOID = 255
GENERATOR_VERSION = 1


def _random_color(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(20, 235, size=3)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth gradient between two random colours with mild noise: no texture."""
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    a, b = _random_color(rng), _random_color(rng)
    image = a[None, None] * (1 - ramp[..., None]) + b[None, None] * ramp[..., None]
    return image + rng.normal(0, 3, size=image.shape)


def _shape_mask(rng: np.random.Generator, height: int, width: int, size: float, outline: bool) -> np.ndarray:
    """A disc, triangle or square about `size` pixels across at a random place and angle; filled,
    or only its outline drawn 10 to 16 pixels thick."""
    mask = np.zeros((height, width), dtype=np.uint8)
    cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
    radius = size / 2
    thickness = int(rng.integers(10, 17)) if outline else -1
    corners = int(rng.choice([0, 3, 4]))
    if corners == 0:
        cv2.circle(mask, (round(cx), round(cy)), round(radius), 1, thickness=thickness)
        return mask
    angles = rng.uniform(0, 2 * np.pi) + np.arange(corners) * 2 * np.pi / corners
    points = np.round(np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1))
    if outline:
        cv2.polylines(mask, [points.astype(np.int32)], True, 1, thickness=thickness)
    else:
        cv2.fillPoly(mask, [points.astype(np.int32)], 1)
    return mask


def _texture(rng: np.random.Generator, kind: str, height: int, width: int) -> np.ndarray:
    """An RGB texture covering the whole image; the object mask cuts it out."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a, b = _random_color(rng), _random_color(rng)
    while np.abs(a - b).sum() < 120:  # keep the two colours of a pattern distinguishable
        b = _random_color(rng)
    if kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(8, 14)
        phase = (np.cos(angle) * xx + np.sin(angle) * yy) / period
        select = (phase % 1.0) < 0.5
    elif kind == "checker":
        cell = rng.uniform(5, 8)
        select = ((np.floor(xx / cell) + np.floor(yy / cell)) % 2) == 0
    else:  # speckle: one colour under strong noise in 2x2 pixel grains (JPEG keeps those)
        grains = rng.normal(0, 30, size=((height + 1) // 2, (width + 1) // 2, 3))
        return a[None, None] + grains.repeat(2, axis=0).repeat(2, axis=1)[:height, :width]
    return np.where(select[..., None], a[None, None], b[None, None]) + rng.normal(0, 3, size=(height, width, 3))


def render_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One image (H, W, 3 uint8) and its label (H, W uint8 with VOID borders)."""
    image = _background(rng, height, width)
    label = np.zeros((height, width), dtype=np.uint8)
    for _ in range(rng.integers(2, 5)):
        class_id = int(rng.integers(1, len(CLASS_NAMES)))
        name = CLASS_NAMES[class_id]
        size = rng.uniform(0.35, 0.7) * min(height, width)
        mask = _shape_mask(rng, height, width, size, outline=name == "ring").astype(bool)
        texture = _texture(rng, name if name in ("stripes", "checker") else "speckle", height, width)
        image[mask] = texture[mask]
        label[mask] = class_id
    # VOC marks a band of a few pixels along every object outline as void.
    edges = cv2.morphologyEx(label, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    label[cv2.dilate(edges.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0] = VOID
    return np.clip(image, 0, 255).astype(np.uint8), label


def make_synthetic_voc(root: str | Path, num_train: int = 300, num_val: int = 60, min_side: int = 112,
                       max_side: int = 192, seed: int = 0) -> Path:
    """Writes JPEGImages/, SegmentationClass/ (palette PNGs) and ImageSets/Segmentation/{train,val,
    trainval}.txt under `root`, once: a stamp records the arguments, and the set is rebuilt only
    when they change."""
    root = Path(root)
    params = dict(num_train=num_train, num_val=num_val, min_side=min_side, max_side=max_side, seed=seed,
                  version=GENERATOR_VERSION)
    stamp = root / "synthetic.json"
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        _write_trainval(root / "ImageSets" / "Segmentation")  # sets written before it existed lack it
        return root
    images, labels, lists = root / "JPEGImages", root / "SegmentationClass", root / "ImageSets" / "Segmentation"
    for folder in (images, labels, lists):
        folder.mkdir(parents=True, exist_ok=True)
    palette = voc_palette().flatten().tolist()
    rng = np.random.default_rng(seed)
    for split, count in (("train", num_train), ("val", num_val)):
        names = []
        for index in range(count):
            name = f"{split}_{index:05d}"
            height, width = (int(v) for v in rng.integers(min_side, max_side + 1, size=2))
            image, label = render_scene(rng, height, width)
            Image.fromarray(image).save(images / f"{name}.jpg", quality=95)
            png = Image.fromarray(label, mode="P")
            png.putpalette(palette)
            png.save(labels / f"{name}.png")
            names.append(name)
        (lists / f"{split}.txt").write_text("\n".join(names) + "\n")
    _write_trainval(lists)
    stamp.write_text(json.dumps(params))
    return root


def _write_trainval(lists: Path) -> None:
    """VOC's third split, train and val together (the paper's second fine-tuning stage uses it)."""
    trainval = lists / "trainval.txt"
    if not trainval.is_file():
        trainval.write_text((lists / "train.txt").read_text() + (lists / "val.txt").read_text())
