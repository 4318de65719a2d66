"""ADE20K scene parsing (the MIT benchmark's ADEChallengeData2016 layout)."""

from pathlib import Path

from deeplab.data.base import DatasetError, Sample, SegmentationDataset, label_lookup

NUM_CLASSES = 150
ADE_HELP = "download ADEChallengeData2016.zip and extract it so that data.root holds images/ and annotations/"


class ADE20KSegmentation(SegmentationDataset):
    """`root/images/<split>/<name>.jpg` with `root/annotations/<split>/<name>.png`; split is
    `training` or `validation`. Stored 0 ("other") becomes ignore_index and 1..150 become 0..149."""

    def __init__(self, root: str | Path, split: str = "training", transform=None, ignore_index: int = 255):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"data.root={self.root} does not exist; {ADE_HELP}")
        image_dir = self.root / "images" / split
        if not image_dir.is_dir():
            found = sorted(p.name for p in (self.root / "images").glob("*") if p.is_dir())
            raise DatasetError(f"split folder {image_dir} not found; splits present: {found or 'none'}")
        samples = [Sample(p.stem, p, self.root / "annotations" / split / f"{p.stem}.png")
                   for p in sorted(image_dir.glob("*.jpg"))]
        self.known_values = set(range(NUM_CLASSES + 1))
        mapping = {stored: stored - 1 for stored in range(1, NUM_CLASSES + 1)}
        super().__init__(samples, transform, lookup=label_lookup(mapping, ignore_index), source=str(image_dir))
