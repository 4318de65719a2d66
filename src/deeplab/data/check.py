"""Reads every sample of a split once and lists what is wrong with it, each problem naming its file."""

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from deeplab.data.base import SegmentationDataset
from deeplab.errors import DatasetError


@dataclass
class SplitReport:
    split: str
    samples: int = 0
    min_size: tuple[int, int] | None = None  # (height, width)
    max_size: tuple[int, int] | None = None
    class_pixels: np.ndarray | None = None  # per class id, ignore_index pixels in the last slot
    problems: list[str] = field(default_factory=list)  # what training cannot read correctly
    notes: list[str] = field(default_factory=list)  # conversions training makes anyway, as it reads

    def add_size(self, height: int, width: int) -> None:
        self.min_size = (height, width) if self.min_size is None else (min(self.min_size[0], height),
                                                                      min(self.min_size[1], width))
        self.max_size = (height, width) if self.max_size is None else (max(self.max_size[0], height),
                                                                      max(self.max_size[1], width))


def _open(path, kind: str, report: SplitReport) -> Image.Image | None:
    if not path.is_file():
        report.problems.append(f"missing {kind}: {path}")
        return None
    try:
        image = Image.open(path)
        image.load()  # decodes the whole file: a truncated one fails here
        return image
    except OSError as err:
        report.problems.append(f"unreadable {kind}: {path} ({err})")
        return None


def check_split(dataset: SegmentationDataset, split: str, num_classes: int, ignore_index: int) -> SplitReport:
    report = SplitReport(split, class_pixels=np.zeros(num_classes + 1, dtype=np.int64))
    lookup, known = dataset.lookup, getattr(dataset, "known_values", None)
    bands = getattr(dataset, "in_channels", 3)
    for sample in dataset.samples:
        report.samples += 1
        image_size = None  # (width, height)
        if bands != 3 or sample.image.suffix.lower() == ".npy":  # multi-band: read as training reads it
            image = None
            if not sample.image.is_file():
                report.problems.append(f"missing image: {sample.image}")
            else:
                try:
                    height, width = dataset.read_image(sample.image).shape[:2]
                    image_size = (width, height)
                    report.add_size(height, width)
                except DatasetError as err:
                    report.problems.append(str(err))
        else:
            image = _open(sample.image, "image", report)
        if image is not None:
            image_size = image.size
            # Training decodes with OpenCV's IMREAD_COLOR: gray is repeated into three channels,
            # 16 bits are scaled to 8 and alpha is dropped. 32-bit and float pixels have no such reading.
            if image.mode in ("I", "F"):
                report.problems.append(f"image of mode {image.mode} (32-bit or float pixels; expected RGB): "
                                       f"{sample.image}")
            elif image.mode in ("L", "I;16", "1"):
                report.notes.append(f"grayscale image (mode {image.mode}), read as RGB: {sample.image}")
            elif image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                report.notes.append(f"image with an alpha channel (mode {image.mode}), read as RGB without it: "
                                    f"{sample.image}")
            report.add_size(image.height, image.width)
        if sample.mask is None:
            continue
        mask = _open(sample.mask, "mask", report)
        if mask is None:
            continue
        colors = getattr(dataset, "color_map", None)  # data.mask_format=color
        expected = ("RGB", "P") if colors is not None else ("P", "L")
        if mask.mode not in expected:
            wanted = "an RGB colour mask" if colors is not None else "a palette or 8-bit index PNG"
            report.problems.append(f"mask of mode {mask.mode} (expected {wanted}): {sample.mask}")
            continue
        if image_size is not None and image_size != mask.size:
            report.problems.append(f"size mismatch: image {image_size[0]}x{image_size[1]}, mask "
                                   f"{mask.width}x{mask.height}: {sample.mask}")
        if colors is not None:
            labels, unknown = colors.decode(np.array(mask.convert("RGB")), ignore_index)
            report.problems.extend(f"colour ({r}, {g}, {b}) on {count} pixels is not in data.colors: {sample.mask}"
                                   for (r, g, b), count in unknown)
        else:
            values = np.array(mask)
            if known is not None:
                foreign = [int(v) for v in np.unique(values) if int(v) not in known]
                if foreign:
                    report.problems.append(f"mask values {foreign} are not labels of this dataset: {sample.mask}")
            labels = lookup[values] if lookup is not None else values
        counts = np.bincount(labels.ravel(), minlength=256)
        outside = [v for v in np.flatnonzero(counts) if v >= num_classes and v != ignore_index]
        if outside:
            report.problems.append(f"mask values {[int(v) for v in outside]} outside 0..{num_classes - 1} and not "
                                   f"ignore_index={ignore_index}: {sample.mask}")
        report.class_pixels[:num_classes] += counts[:num_classes]
        report.class_pixels[num_classes] += counts[ignore_index]
    return report


def format_report(report: SplitReport, class_names: list[str]) -> str:
    lines = [f"split {report.split}: {report.samples} samples"]
    if report.min_size is not None:
        lines.append(f"  image sizes (h x w): {report.min_size[0]}x{report.min_size[1]} to "
                     f"{report.max_size[0]}x{report.max_size[1]}")
    total = report.class_pixels.sum()
    if total:
        lines.append("  class pixel frequencies:")
        for name, count in zip([*class_names, "(ignore)"], report.class_pixels.tolist(), strict=True):
            lines.append(f"    {name:<24} {100 * count / total:7.3f}%  {count:>14}")
    lines.extend(f"  note: {n}" for n in report.notes)
    lines.extend(f"  problem: {p}" for p in report.problems)
    return "\n".join(lines)


def single_class_split(dataset: SegmentationDataset, num_classes: int, ignore_index: int) -> tuple[list[int], int,
                                                                                                    int]:
    """(class ids with no pixel, void pixels, pixels) of a split whose masks, as training reads
    them, hold at most one class; ([], 0, 0) as soon as a second class shows, which in a healthy
    split is within the first masks."""
    seen = np.zeros(num_classes, dtype=bool)
    void = total = 0
    for sample in dataset.samples:
        if sample.mask is None:
            continue
        counts = np.bincount(dataset.read_labels(sample.mask).ravel(), minlength=256)
        seen |= counts[:num_classes] > 0
        if seen.sum() > 1:
            return [], 0, 0
        void += int(counts[ignore_index]) if 0 <= ignore_index < 256 else 0
        total += int(counts.sum())
    return [int(c) for c in np.flatnonzero(~seen)], void, total


def absent_class_problem(split: str, missing: list[int], void: int, total: int, class_names: list[str],
                         ignore_index: int) -> str | None:
    """Every pixel is void or one class: masks that store the other classes under values read as
    void (0/255 binary masks: the foreground is 255), so training would learn a single class. A few
    classes absent from a small split (nine VOC images hold twelve of its classes) are no problem."""
    if not missing or not void or len(class_names) - len(missing) > 1:
        return None
    names = ", ".join(f"{c} ({class_names[c]})" for c in missing)
    example = f"{{{ignore_index}: {missing[0]}}}" if len(missing) == 1 else "{STORED_VALUE: CLASS_ID}"
    return (f"split {split}: class {names} never occurs while {100 * void / max(total, 1):.1f}% of the mask pixels "
            f"are void (ignore_index={ignore_index}); if the masks store that class as another value (0/255 "
            f"masks store it as 255), map it with data.label_map={example}")
