"""ADE20K scene parsing (the MIT benchmark's ADEChallengeData2016 layout)."""

from pathlib import Path

from deeplab.data.base import Sample, SegmentationDataset, label_lookup, split_folder

NUM_CLASSES = 150
ADE_HELP = "download ADEChallengeData2016.zip and extract it so that data.root holds images/ and annotations/"


class ADE20KSegmentation(SegmentationDataset):
    """`root/images/<split>/<name>.jpg` with `root/annotations/<split>/<name>.png`; split is
    `training` or `validation`. Stored 0 ("other") becomes ignore_index and 1..150 become 0..149."""

    def __init__(self, root: str | Path, split: str = "training", transform=None, ignore_index: int = 255):
        self.root = Path(root)
        image_dir = split_folder(self.root, "images", split, ADE_HELP)
        samples = [Sample(p.stem, p, self.root / "annotations" / split / f"{p.stem}.png")
                   for p in sorted(image_dir.glob("*.jpg"))]
        self.known_values = set(range(NUM_CLASSES + 1))
        mapping = {stored: stored - 1 for stored in range(1, NUM_CLASSES + 1)}
        super().__init__(samples, transform, lookup=label_lookup(mapping, ignore_index), source=str(image_dir))
