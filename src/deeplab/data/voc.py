"""PASCAL VOC 2012 segmentation in its on-disk layout (VOCdevkit/VOC2012)."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
VOC_HELP = ("download VOCtrainval_11-May-2012.tar from the PASCAL VOC site and extract it so that "
            "data.root holds JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/")


class DatasetError(ValueError):
    """A dataset on disk is missing or malformed; the message names the path."""


class VOCSegmentation(Dataset):
    """Reads `root/ImageSets/Segmentation/<split>.txt`, `root/JPEGImages/<id>.jpg` and
    `root/SegmentationClass/<id>.png` (palette PNGs whose indices are the class ids, 255 void).

    Returns dicts with `image` (float CHW after the transform), `mask` (long HW) and `name`."""

    def __init__(self, root: str | Path, split: str = "train", transform=None):
        self.root = Path(root)
        self.split = split
        self.transform = transform
        list_file = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not self.root.is_dir():
            raise DatasetError(f"data.root={self.root} does not exist; {VOC_HELP}")
        if not list_file.is_file():
            found = sorted(p.stem for p in list_file.parent.glob("*.txt"))
            raise DatasetError(f"split list {list_file} not found; splits present: {found or 'none'}")
        self.ids = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
        if not self.ids:
            raise DatasetError(f"split list {list_file} is empty")
        missing = [i for i in self.ids if not self.image_path(i).is_file() or not self.mask_path(i).is_file()]
        if missing:
            first = missing[0]
            path = self.image_path(first) if not self.image_path(first).is_file() else self.mask_path(first)
            raise DatasetError(f"{len(missing)} of {len(self.ids)} samples in {list_file} lack files, first: {path}")

    def image_path(self, sample_id: str) -> Path:
        return self.root / "JPEGImages" / f"{sample_id}.jpg"

    def mask_path(self, sample_id: str) -> Path:
        return self.root / "SegmentationClass" / f"{sample_id}.png"

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        sample_id = self.ids[index]
        image = np.array(Image.open(self.image_path(sample_id)).convert("RGB"))
        mask = np.array(Image.open(self.mask_path(sample_id)))  # palette indices are class ids
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        else:
            image = torch.from_numpy(image.copy()).permute(2, 0, 1)
            mask = torch.from_numpy(mask.copy())
        return {"image": image, "mask": torch.as_tensor(mask, dtype=torch.long), "name": sample_id}
