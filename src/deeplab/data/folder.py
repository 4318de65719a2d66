"""Your own data: `root/images/` and `root/masks/`, matched by file stem."""

import zlib
from pathlib import Path

import numpy as np

from deeplab.data.base import BAND_SUFFIXES, DatasetError, Sample, SegmentationDataset, read_bands
from deeplab.data.colors import ColorMap

# class ids in palette/8-bit PNGs; colours mapped by data.colors; multilabel: one 0/1 PNG a label
# (masks/<label>/<name>.png), or one multi-band .tif/.tiff/.npy an image, a band a label
MASK_FORMATS = ("index", "color", "labels", "bands")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".npy")
FOLDER_HELP = "data.root must hold images/ (any of {}) and masks/ (<same name>.png)".format(" ".join(IMAGE_SUFFIXES))


def val_names(stems: list[str], val_fraction: float) -> set[str]:
    """The val split without split files: the round(val_fraction * n) names with the lowest hashes,
    at least one (and at most n - 1) when there are two images or more. By hash, not position, so
    adding images moves an existing one between the splits only at the margin."""
    if len(stems) < 2:
        return set()
    count = min(max(1, round(val_fraction * len(stems))), len(stems) - 1)
    return set(sorted(stems, key=lambda s: (zlib.crc32(s.encode()), s))[:count])


class FolderSegmentation(SegmentationDataset):
    """Masks are palette PNGs or 8-bit index PNGs whose values are class ids (ignore_index: void),
    or with `mask_format="color"` colour images whose exact colours map to classes through
    `colors` (see deeplab.data.colors). The split comes from `root/splits/<split>.txt` (one stem a
    line) when that file exists; without a splits/ folder, `train` and `val` divide the images by
    a hash of their names, `val_fraction` of them to val."""

    def __init__(self, root: str | Path, split: str = "train", transform=None, images: str = "images",
                 masks: str = "masks", val_fraction: float = 0.1, mask_format: str = "index",
                 colors: list | None = None, void_color: list | None = None, num_classes: int | None = None,
                 in_channels: int = 3, labels: list[str] | None = None):
        if mask_format not in MASK_FORMATS:
            raise DatasetError(f"data.mask_format={mask_format} is not allowed; allowed: {', '.join(MASK_FORMATS)}")
        if mask_format == "color" and colors is None and num_classes is None:
            raise DatasetError("data.mask_format=color needs data.colors, or data.num_classes for the VOC colour map")
        self.color_map = ColorMap(colors, num_classes, void_color) if mask_format == "color" else None
        self.in_channels = in_channels
        self.root = Path(root)
        self.labels = list(labels or []) if mask_format in ("labels", "bands") else None
        self.mask_bands = mask_format == "bands"  # masks/<name>.tif/.tiff/.npy of (H, W, labels)
        if self.labels == []:
            raise DatasetError(f"data.mask_format={mask_format} reads a mask a label of data.class_names, and none "
                               "is named")
        image_dir, mask_dir, split_dir = self.root / images, self.root / masks, self.root / "splits"
        if not image_dir.is_dir():
            raise DatasetError(f"data.root={self.root} has no {images}/ folder; {FOLDER_HELP}")
        files = [p for p in sorted(image_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        by_stem = {p.stem: p for p in files}
        if len(by_stem) < len(files):
            twins = [p.name for p in files if sum(q.stem == p.stem for q in files) > 1]
            raise DatasetError(f"{image_dir}: images share a name, so their masks would too: {', '.join(twins[:4])}")
        list_file = split_dir / f"{split}.txt"
        if list_file.is_file():
            stems = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
            unknown = [s for s in stems if s not in by_stem]
            if unknown:
                raise DatasetError(f"{list_file} lists {len(unknown)} names with no image in {image_dir}, "
                                   f"first: {unknown[0]}")
            source = str(list_file)
        elif split_dir.is_dir():
            found = sorted(p.stem for p in split_dir.glob("*.txt"))
            raise DatasetError(f"split list {list_file} not found; splits present: {found or 'none'}")
        elif split in ("train", "val"):
            held_out = val_names(list(by_stem), val_fraction)
            stems = [s for s in by_stem if (s in held_out) == (split == "val")]
            source = f"{image_dir} ({split}: {'' if split == 'val' else 'all but '}{val_fraction:g} of the images)"
        else:
            raise DatasetError(f"split {split!r} needs {list_file}; without a splits/ folder only train and val exist")
        if self.labels is not None and not self.mask_bands:  # masks/<label>/<name>.png: a sample's is its first's
            self._check_label_folders(mask_dir)
            mask_dir = mask_dir / self.labels[0]
        # masks by name, their suffix in any case (img.JPG beside img.PNG)
        suffixes = BAND_SUFFIXES if self.mask_bands else (".png",)
        self.mask_files = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() in suffixes} \
            if mask_dir.is_dir() else {}
        self.image_files = by_stem
        expected = ".npy" if self.mask_bands else ".png"  # the name a missing mask is reported by
        samples = [Sample(s, by_stem[s], self.mask_files.get(s, mask_dir / f"{s}{expected}")) for s in stems]
        super().__init__(samples, transform, source=source)

    def orphan_masks(self) -> list[Path]:
        """Masks with no image of their name: a renamed or deleted image, or a typo."""
        return sorted(p for stem, p in self.mask_files.items() if stem not in self.image_files)

    def _check_label_folders(self, mask_dir: Path) -> None:
        missing = [name for name in self.labels if not (mask_dir / name).is_dir()]
        if missing:
            found = sorted(p.name for p in mask_dir.iterdir() if p.is_dir()) if mask_dir.is_dir() else []
            raise DatasetError(f"{mask_dir / missing[0]}/ is missing: data.mask_format=labels reads one folder a "
                               f"label of data.class_names ({', '.join(self.labels)}); folders present: "
                               f"{', '.join(found) or 'none'}")

    @staticmethod
    def label_path(path: Path, label: str) -> Path:
        """The mask of `label` of the sample whose first label's mask is `path`."""
        return path.parent.parent / label / path.name

    def _label_paths(self, path: Path) -> list[Path]:
        return [self.label_path(path, name) for name in self.labels]

    def missing_files(self) -> list[tuple[str, Path]]:
        if self.labels is None or self.mask_bands:
            return super().missing_files()
        paths = [(kind, p) for s in self.samples for kind, p in
                 [("image", s.image)] + [("mask", m) for m in (self._label_paths(s.mask) if s.mask else [])]]
        return [(kind, p) for kind, p in paths if not p.is_file()]

    def read_image(self, path: Path):
        return read_bands(path, self.in_channels)

    def read_labels(self, path: Path):
        if self.mask_bands:  # (H, W, labels): a band a label, its stored values through the lookup
            return self._band_labels(path)
        if self.labels is not None:  # (H, W, labels): each label's stored values through the lookup
            return np.stack([super(FolderSegmentation, self).read_labels(p) for p in self._label_paths(path)],
                            axis=-1)
        if self.color_map is None:
            return super().read_labels(path)
        return self.color_map.labels_of(path, self.ignore_index)

    def _band_labels(self, path: Path) -> np.ndarray:
        try:
            bands = read_bands(path, len(self.labels))
        except DatasetError as err:  # worded for images: say what a mask needs
            raise DatasetError(f"{path}: data.mask_format=bands reads height x width x {len(self.labels)}, a band a "
                               f"label of data.class_names ({', '.join(self.labels)}); "
                               f"{str(err).removeprefix(f'{path}: ')}") from err
        if bands.dtype.kind not in "uib" or bands.min(initial=0) < 0 or bands.max(initial=0) > 255:
            raise DatasetError(f"{path}: mask of {bands.dtype} values {bands.min()}..{bands.max()}; "
                               "data.mask_format=bands reads integers 0/1 a label (the void: data.ignore_index)")
        bands = bands.astype(np.uint8)
        return self.lookup[bands] if self.lookup is not None else bands
