"""Masks stored as colour images (data.mask_format=color): each exact [r, g, b] is one class.

No nearest-colour matching: a colour that is not in the map is an error naming the file, the
colour and its pixel count, since a JPEG-compressed or anti-aliased mask would otherwise train on
labels nobody drew."""

from pathlib import Path

import numpy as np
from PIL import Image

from deeplab.data.palette import voc_palette
from deeplab.errors import DatasetError

VOC_VOID = (224, 224, 192)  # the VOC colour map's entry 255: object borders and difficult regions


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _unpack(code: int) -> tuple[int, int, int]:
    return (code >> 16) & 255, (code >> 8) & 255, code & 255


class ColorMap:
    """Class `i` is `colors[i]`; `void_color` pixels are read as the dataset's ignore_index.
    With `colors=None`, the VOC colour map of `num_classes` classes and VOC's void colour."""

    def __init__(self, colors: list | None, num_classes: int, void_color: list | None = None):
        if colors is None:
            colors = voc_palette()[:num_classes].tolist()
            void_color = VOC_VOID if void_color is None else void_color
        codes = [int(_pack(np.array(c))) for c in colors]
        self.void = int(_pack(np.array(void_color))) if void_color is not None else None
        order = np.argsort(codes)
        self.codes, self.labels = np.array(codes)[order], np.arange(len(codes))[order]

    def read(self, path: Path) -> np.ndarray:
        """The mask file as (H, W, 3) uint8 colours; palette PNGs are colours too."""
        try:
            with Image.open(path) as mask:
                if mask.mode not in ("RGB", "P"):
                    hint = " (an index mask: data.mask_format=index reads it)" if mask.mode == "L" else ""
                    raise DatasetError(f"{path}: mask has mode {mask.mode}{hint}; data.mask_format=color reads RGB "
                                       "colour masks")
                return np.array(mask.convert("RGB"))
        except OSError as err:
            raise DatasetError(f"{path}: cannot read the mask ({err})") from err

    def decode(self, rgb: np.ndarray, ignore_index: int) -> tuple[np.ndarray, list[tuple[tuple, int]]]:
        """Class ids (uint8, ignore_index for the void colour and for unknown colours), and the
        unknown colours with their pixel counts, most frequent first."""
        codes = _pack(rgb)
        index = np.searchsorted(self.codes, codes).clip(max=len(self.codes) - 1)
        known = self.codes[index] == codes
        labels = np.where(known, self.labels[index], ignore_index).astype(np.uint8)
        if self.void is not None:
            known |= codes == self.void
        if known.all():
            return labels, []
        values, counts = np.unique(codes[~known], return_counts=True)
        order = np.argsort(-counts, kind="stable")
        return labels, [(_unpack(int(values[i])), int(counts[i])) for i in order]

    def labels_of(self, path: Path, ignore_index: int) -> np.ndarray:
        """The class-id mask of a file, or a DatasetError naming its first unknown colour."""
        labels, unknown = self.decode(self.read(path), ignore_index)
        if unknown:
            (r, g, b), count = unknown[0]
            more = f" ({len(unknown) - 1} more unknown colours; tools/check_data.py lists them)" if len(unknown) > 1 \
                else ""
            raise DatasetError(f"{path}: colour ({r}, {g}, {b}) on {count} pixels is not in data.colors{more}")
        return labels
