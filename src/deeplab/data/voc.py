"""PASCAL VOC 2012 segmentation in its on-disk layout (VOCdevkit/VOC2012)."""

from pathlib import Path

from deeplab.data.base import DatasetError, Sample, SegmentationDataset

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
VOC_HELP = ("download VOCtrainval_11-May-2012.tar from the PASCAL VOC site and extract it so that "
            "data.root holds JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/")

__all__ = ["VOC_CLASSES", "DatasetError", "VOCSegmentation", "read_split"]


def read_split(list_file: Path) -> list[str]:
    """The ids of a split list, naming the lists that do exist when it does not."""
    if not list_file.is_file():
        found = sorted(p.stem for p in list_file.parent.glob("*.txt"))
        raise DatasetError(f"split list {list_file} not found; splits present: {found or 'none'}")
    ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    if not ids:
        raise DatasetError(f"split list {list_file} is empty")
    return ids


class VOCSegmentation(SegmentationDataset):
    """Reads `root/ImageSets/Segmentation/<split>.txt`, `root/JPEGImages/<id>.jpg` and
    `root/<mask_dir>/<id>.png` (palette PNGs whose indices are the class ids, 255 void).
    `mask_dir=SegmentationClassAug` reads the train_aug labels that tools/prepare_data.py writes."""

    def __init__(self, root: str | Path, split: str = "train", transform=None,
                 mask_dir: str = "SegmentationClass"):
        self.root = Path(root)
        self.split = split
        if not self.root.is_dir():
            raise DatasetError(f"data.root={self.root} does not exist; {VOC_HELP}")
        list_file = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        samples = [Sample(i, self.root / "JPEGImages" / f"{i}.jpg", self.root / mask_dir / f"{i}.png")
                   for i in read_split(list_file)]
        super().__init__(samples, transform, source=str(list_file))
