"""What every dataset shares: a list of (image, mask) files, a label mapping, one way to read."""

import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from deeplab.errors import DatasetError


@dataclass(frozen=True)
class Sample:
    name: str
    image: Path
    mask: Path | None  # None: the split has no labels (a test split)


def split_folder(root: Path, parent: str, split: str, help_text: str) -> Path:
    """`root/parent/split`, for layouts whose splits are folders; the error names what exists."""
    if not root.is_dir():
        raise DatasetError(f"data.root={root} does not exist; {help_text}")
    folder = root / parent / split
    if not folder.is_dir():
        found = sorted(p.name for p in (root / parent).glob("*") if p.is_dir())
        raise DatasetError(f"split folder {folder} not found; splits present: {found or 'none'}")
    return folder


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 (H, W, 3), decoded by OpenCV (faster than PIL for JPEG); grayscale is expanded."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{path}: cannot read the image")
    if truncated_jpeg(path):  # OpenCV decodes what is there, grey below, and only warns without the name
        raise DatasetError(f"{path}: the JPEG file ends early (truncated: no end-of-image marker); copy it again or "
                           "remove it from the split")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def truncated_jpeg(path: Path) -> bool:
    """A JPEG whose end-of-image marker (FF D9) is missing from its last bytes: cut off in a copy
    or a download. Reads only the file's head and tail."""
    with open(path, "rb") as file:
        if file.read(2) != b"\xff\xd8":
            return False  # not a JPEG
        file.seek(0, 2)
        file.seek(max(0, file.tell() - 4096))
        return b"\xff\xd9" not in file.read()


BAND_SUFFIXES = (".tif", ".tiff", ".npy")  # where images of other than three channels are read from


def read_bands(path: Path, channels: int) -> np.ndarray:
    """An image of `channels` bands as (H, W, channels), its dtype kept (data.max_pixel_value says
    what 1.0 is): .tif/.tiff through tifffile, .npy arrays; three-channel images of other formats
    as read_image reads them."""
    suffix = path.suffix.lower()
    if channels == 3 and suffix != ".npy":
        return read_image(path)
    if suffix not in BAND_SUFFIXES:
        raise DatasetError(f"{path}: data.in_channels={channels} images are read from {', '.join(BAND_SUFFIXES)} "
                           f"files, not {suffix}")
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            import tifffile  # only multi-band data needs it

            array = tifffile.imread(path)
    except Exception as err:  # truncated files, other formats: one line naming the file
        raise DatasetError(f"{path}: cannot read the image ({type(err).__name__}: {err})") from err
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim == 3 and array.shape[-1] != channels and array.shape[0] == channels:
        array = np.moveaxis(array, 0, -1)  # TIFF's planar layout (bands first)
    if array.ndim != 3 or array.shape[-1] != channels:
        raise DatasetError(f"{path}: image of shape {list(array.shape)}; data.in_channels={channels} needs "
                           f"height x width x {channels}")
    return np.ascontiguousarray(array)


def as_rgb(image: np.ndarray, max_pixel_value: float = 255) -> np.ndarray:
    """An image to look at, (H, W, 3) uint8: RGB as it is; of other bands, the first three (or the
    first, grey, when there are fewer), scaled by max_pixel_value."""
    if image.dtype == np.uint8 and image.shape[-1] == 3 and max_pixel_value == 255:
        return image
    bands = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, axis=-1)
    return (bands.astype(np.float32) * (255 / max_pixel_value)).clip(0, 255).round().astype(np.uint8)


def read_mask(path: Path) -> np.ndarray:
    """The stored label values (H, W): palette indices for palette PNGs, the values of 8-bit
    PNGs. PIL, not OpenCV, which would turn a palette PNG into colours."""
    try:
        with Image.open(path) as mask:
            if mask.mode not in ("P", "L"):
                raise DatasetError(f"{path}: mask has mode {mask.mode}; expected a palette or 8-bit index PNG")
            return np.array(mask)
    except OSError as err:
        raise DatasetError(f"{path}: cannot read the mask ({err})") from err


def label_lookup(mapping: dict[int, int], ignore_index: int = 255) -> np.ndarray:
    """A 256-entry table from stored values to class ids; values not in `mapping` become ignore_index."""
    table = np.full(256, ignore_index, dtype=np.uint8)
    for stored, label in mapping.items():
        table[stored] = label
    return table


class SegmentationDataset(Dataset):
    """Samples read from files; `lookup` (256 entries) maps stored mask values to class ids.

    Returns dicts with `image` (CHW pixels, not normalised: uint8 for 8-bit images, float32 for other
    bands), `mask` (uint8 HW class ids) and `name`; the device side normalises and widens them."""

    def __init__(self, samples: list[Sample], transform=None, lookup: np.ndarray | None = None,
                 source: str = "the split list"):
        if not samples:
            raise DatasetError(f"{source} lists no samples")
        self.samples = samples
        self.transform = transform
        self.lookup = lookup
        self.source = source
        self.num_classes: int | None = None  # set by the DataModule: labels outside it are refused
        self.ignore_index = 255
        self.image_size: tuple[int, int] | None = None  # data.image_size: (height, width) every sample is read at

    def missing_files(self) -> list[tuple[str, Path]]:
        """Every listed image or mask that is not on disk, as (kind, path)."""
        paths = [(kind, p) for s in self.samples for kind, p in (("image", s.image), ("mask", s.mask))
                 if p is not None]
        return [(kind, p) for kind, p in paths if not p.is_file()]

    def check_files(self) -> None:
        """The cheap check training runs at start: every listed file exists. Worded as
        tools/check_data.py words it."""
        missing = self.missing_files()
        if missing:
            kind, path = missing[0]
            more = f" ({len(missing) - 1} more files listed by {self.source} are missing too)" if len(missing) > 1 \
                else ""
            raise DatasetError(f"missing {kind}: {path}{more}")

    def __len__(self) -> int:
        return len(self.samples)

    def read_image(self, path: Path) -> np.ndarray:
        """An image file as (H, W, C); RGB unless the dataset reads more bands."""
        return read_image(path)

    def read_labels(self, path: Path) -> np.ndarray:
        """A mask file's class ids: its stored values through `lookup`."""
        mask = read_mask(path)
        return self.lookup[mask] if self.lookup is not None else mask

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The image and its class-id mask, before any transform."""
        sample = self.samples[index]
        image = self.read_image(sample.image)
        mask = self.read_labels(sample.mask) if sample.mask is not None else np.full(image.shape[:2], 255, np.uint8)
        if mask.shape[:2] != image.shape[:2]:
            raise DatasetError(f"{sample.mask}: mask is {mask.shape[1]}x{mask.shape[0]}, image {sample.image} is "
                               f"{image.shape[1]}x{image.shape[0]}")
        if self.image_size is not None:
            image, mask = resize(image, mask, self.image_size)
        values = 2 if mask.ndim == 3 else self.num_classes  # a mask a label (multilabel) holds 0/1
        if values is not None and mask.max(initial=0) >= values:
            outside = [int(v) for v in np.unique(mask) if v >= values and v != self.ignore_index]
            if outside:  # the loss would fail on them with an index error far from the cause
                raise DatasetError(f"{sample.mask}: mask values {outside} outside 0..{values - 1} and not "
                                   f"the void {self.ignore_index}")
        return image, mask

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        # (index, seed) from ResumableSampler: the augmentation of this draw is fixed by its seed
        index, seed = item if isinstance(item, tuple) else (item, None)
        image, mask = self.load(index)
        if seed is not None and hasattr(self.transform, "set_random_seed"):
            self.transform.set_random_seed(seed)
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        else:
            image = torch.from_numpy(image.copy()).permute(2, 0, 1)
            mask = torch.from_numpy(mask.copy())
        if mask.ndim == 3:  # one mask a label (multilabel), as (labels, H, W)
            mask = mask.permute(2, 0, 1)
        if image.dtype != torch.uint8:  # 16-bit and float bands: one dtype the batch and the device can take
            image = image.float()
        # uint8 labels (class ids and the void, as read) cross to the device at an eighth of int64's bytes
        return {"image": image, "mask": torch.as_tensor(mask, dtype=torch.uint8), "name": self.samples[index].name}


def resize(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image and mask at (height, width): area averaging for the image when it shrinks (bilinear when
    it grows), nearest for the mask so that its values stay class ids and void."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image, mask
    shrink = height * width < image.shape[0] * image.shape[1]
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if resized.ndim == 2:  # OpenCV drops a single band's axis
        resized = resized[..., None]
    labels = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return resized, labels[..., None] if mask.ndim == 3 and labels.ndim == 2 else labels


def in_fold(name: str, fold: int, num_folds: int) -> bool:
    """Fold membership by a hash of the image name: adding images moves none of the others."""
    return zlib.crc32(name.encode()) % num_folds == fold


def keep_fold(dataset: SegmentationDataset, fold: int, num_folds: int, held_out: bool) -> SegmentationDataset:
    """Cross-validation on a split: its fold `fold` of `num_folds` (held_out, the validation
    images) or all its other images (training)."""
    samples = [s for s in dataset.samples if in_fold(s.name, fold, num_folds) == held_out]
    part = "held out" if held_out else "the rest"
    if not samples:
        raise DatasetError(f"data.fold={fold} of data.num_folds={num_folds} leaves no images ({part}) of "
                           f"{dataset.source}; use fewer folds")
    dataset.samples, dataset.source = samples, f"{dataset.source} (fold {fold} of {num_folds}, {part})"
    return dataset


def apply_label_map(dataset: SegmentationDataset, label_map: dict | None, ignore_index: int) -> SegmentationDataset:
    """data.label_map: stored mask values read as other class ids, or as the void (null or
    ignore_index), on top of the dataset's own reading: {255: 1} for 0/255 binary masks,
    {11: 255} for SegNet's void 11, {0: 255, 1: 0, 2: 1, ...} where 0 is void (ADE20K)."""
    if not label_map:
        return dataset
    if getattr(dataset, "color_map", None) is not None:
        raise DatasetError("data.label_map maps the values of index masks; with data.mask_format=color map colours "
                           "with data.colors and data.void_color")
    table = dataset.lookup.copy() if dataset.lookup is not None else np.arange(256, dtype=np.uint8)
    for stored, label in label_map.items():
        table[int(stored)] = ignore_index if label is None else int(label)
    dataset.lookup = table
    return dataset


def open_split(dataset, split: str, transform, num_classes: int, ignore_index: int,
               label_map: dict | None = None, image_size=None) -> SegmentationDataset:
    """One split of a dataset (`dataset(split=..., transform=...)` builds it), its files checked to
    exist (DatasetError names the first missing one), the label range it is read with and the size
    its samples are read at (data.image_size: [height, width], or an int for squares; None: as stored)."""
    opened = apply_label_map(dataset(split=split, transform=transform), label_map, ignore_index)
    opened.check_files()
    opened.num_classes, opened.ignore_index = num_classes, ignore_index
    opened.image_size = image_sides(image_size)
    return opened


def image_sides(size) -> tuple[int, int] | None:
    """data.image_size as (height, width): from [height, width], [side] or a side; None stays None."""
    if size is None:
        return None
    sides = [size] if isinstance(size, int) else list(size)
    return int(sides[0]), int(sides[-1])
