"""Cityscapes fine annotations in their on-disk layout: leftImg8bit/ and gtFine/."""

from pathlib import Path

from deeplab.data.base import Sample, SegmentationDataset, label_lookup, split_folder

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
        image_dir = split_folder(self.root, "leftImg8bit", split, CITYSCAPES_HELP)
        samples = []
        for image in sorted(image_dir.glob("*/*_leftImg8bit.png")):
            name = image.name.removesuffix("_leftImg8bit.png")
            mask = self.root / "gtFine" / split / image.parent.name / f"{name}_gtFine_labelIds.png"
            samples.append(Sample(name, image, mask))
        self.known_values = set(LABEL_IDS)
        super().__init__(samples, transform, lookup=label_lookup(LABEL_TO_TRAIN_ID, ignore_index),
                         source=str(image_dir))
