"""Cityscapes fine annotations in their on-disk layout: leftImg8bit/ and gtFine/."""

from pathlib import Path

from deeplab.data.base import DatasetError, Sample, SegmentationDataset, label_lookup

# The official labelId -> trainId mapping (cityscapesScripts labels.py): 19 classes, the rest void.
LABEL_TO_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                     26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
LABEL_IDS = range(34)  # the values gtFine labelIds PNGs hold (0 unlabeled .. 33 bicycle)
CITYSCAPES_HELP = ("download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from "
                   "cityscapes-dataset.com and extract both into data.root")


class CityscapesSegmentation(SegmentationDataset):
    """`root/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png` with
    `root/gtFine/<split>/<city>/<name>_gtFine_labelIds.png`, mapped to the 19 train ids."""

    def __init__(self, root: str | Path, split: str = "train", transform=None, ignore_index: int = 255):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"data.root={self.root} does not exist; {CITYSCAPES_HELP}")
        image_dir = self.root / "leftImg8bit" / split
        if not image_dir.is_dir():
            found = sorted(p.name for p in (self.root / "leftImg8bit").glob("*") if p.is_dir())
            raise DatasetError(f"split folder {image_dir} not found; splits present: {found or 'none'}")
        samples = []
        for image in sorted(image_dir.glob("*/*_leftImg8bit.png")):
            name = image.name.removesuffix("_leftImg8bit.png")
            mask = self.root / "gtFine" / split / image.parent.name / f"{name}_gtFine_labelIds.png"
            samples.append(Sample(name, image, mask))
        self.known_values = set(LABEL_IDS)
        super().__init__(samples, transform, lookup=label_lookup(LABEL_TO_TRAIN_ID, ignore_index),
                         source=str(image_dir))
