"""`tools/check_data.py`: every sample of every split read once; counts, sizes, class frequencies
and every problem, each naming its file."""

import json
import sys
from collections import Counter
from copy import copy as shallow_copy
from dataclasses import replace

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from deeplab.builders.data import label_map
from deeplab.data.base import apply_label_map
from deeplab.data.check import SplitReport, absent_class_problem, check_split, format_report
from deeplab.errors import DatasetError


def run(cfg: DictConfig) -> int:
    """Prints a report per split and returns the number of problems found."""
    data = cfg.data
    splits = list(cfg.splits) if cfg.splits else list(dict.fromkeys([data.train_split, data.val_split]))
    if data.get("prepare"):
        instantiate(data.prepare)()  # what training would read: the generated or converted files
    build = instantiate(data.dataset)
    problems, notes, summary, names = [], 0, {}, {}
    for split in splits:
        try:
            dataset = apply_label_map(build(split=split), label_map(data), data.ignore_index)
        except DatasetError as err:
            problems.append(str(err))
            print(f"split {split}: cannot be opened\n  problem: {err}")
            continue
        shares = {}  # binary and multilabel: the foreground's share of the labelled pixels, a label
        if getattr(dataset, "mask_bands", False):  # multilabel, a band a label: read as training reads them
            report, shares = check_bands(dataset, split, data.ignore_index)
        elif getattr(dataset, "labels", None):  # multilabel: each label's masks, as a two-class split
            report, shares = check_labels(dataset, split, data.ignore_index)
        else:
            report = check_split(dataset, split, data.num_classes, data.ignore_index)
            if (cfg.get("task") or {}).get("name") == "binary":
                shares = {data.class_names[1]: foreground_share(report.class_pixels)}
        listed = [s.name for s in dataset.samples]
        names[split] = set(listed)
        twice = sorted(n for n, times in Counter(listed).items() if times > 1)
        if twice:  # read twice an epoch, or counted twice in the val mIoU
            report.problems.append(f"{dataset.source} lists {len(twice)} images more than once, first: {twice[0]}")
        orphans = dataset.orphan_masks() if hasattr(dataset, "orphan_masks") and split == splits[0] else []
        report.problems.extend(f"mask with no image of its name: {p}" for p in orphans)
        if split == data.train_split and not getattr(dataset, "labels", None):
            pixels = report.class_pixels
            missing = [int(c) for c in np.flatnonzero(pixels[:-1] == 0)]
            absent = absent_class_problem(split, missing, int(pixels[-1]), int(pixels.sum()), list(data.class_names),
                                          data.ignore_index)
            report.problems.extend([absent] if absent else [])
        print(format_report(report, list(data.class_names)))
        for name, share in shares.items():
            print(f"  foreground share: {name} on {share:.2f}% of the labelled pixels")
        problems.extend(report.problems)
        notes += len(report.notes)
        summary[split] = {"samples": report.samples, "problems": len(report.problems), "notes": len(report.notes),
                          **({"foreground_share": shares} if shares else {})}
    train, val = data.train_split, data.val_split
    both = sorted(names.get(train, set()) & names.get(val, set())) if train != val else []
    if both:  # validation on training images reads higher than the model is
        problems.append(f"{len(both)} images are in both {train} and {val}, first: {both[0]}")
        print(f"  problem: {problems[-1]}")
    found = f"{len(problems)} problems found" if problems else "no problems found"
    print(found + (f" ({notes} notes: conversions training makes as it reads)" if notes else ""))
    print(json.dumps({"splits": summary, "problems": len(problems), "notes": notes}))
    return len(problems)


def foreground_share(class_pixels: np.ndarray) -> float:
    """Percent of the labelled pixels of a two-class split that are foreground (class 1)."""
    labelled = int(class_pixels[:2].sum())
    return 100 * float(class_pixels[1]) / labelled if labelled else float("nan")


def _with_samples(dataset, samples):
    other = shallow_copy(dataset)
    other.samples = samples
    other.labels = None  # each label's mask on its own
    return other


def check_labels(dataset, split: str, ignore_index: int):
    """A multilabel split: every label's masks read as two-class masks (0, 1 and the void), their
    problems named by file; returns the report and each label's foreground share."""
    combined, shares = None, {}
    for label in dataset.labels:
        samples = [replace(s, mask=dataset.label_path(s.mask, label)) if s.mask else s for s in dataset.samples]
        report = check_split(_with_samples(dataset, samples), split, 2, ignore_index)
        shares[label] = foreground_share(report.class_pixels)
        if combined is None:
            combined, report.class_pixels = report, np.zeros(3, dtype=np.int64)  # the labels overlap: no totals
            continue
        combined.problems.extend(report.problems)
        combined.notes.extend(report.notes)
    return combined, shares


def check_bands(dataset, split: str, ignore_index: int):
    """A multilabel split of multi-band masks: each sample read as training reads it (its size, bands
    and values checked there), problems named by file; returns the report and each label's share."""
    report = SplitReport(split, class_pixels=np.zeros(3, dtype=np.int64))
    present = np.zeros(len(dataset.labels), dtype=np.int64)
    labelled = np.zeros(len(dataset.labels), dtype=np.int64)
    for index, sample in enumerate(dataset.samples):
        report.samples += 1
        if sample.mask is not None and not sample.mask.is_file():
            report.problems.append(f"missing mask: {sample.mask}")
            continue
        try:
            image, mask = dataset.load(index)
        except DatasetError as err:
            report.problems.append(str(err))
            continue
        report.add_size(*image.shape[:2])
        present += (mask == 1).reshape(-1, mask.shape[-1]).sum(0)
        labelled += (mask != ignore_index).reshape(-1, mask.shape[-1]).sum(0)
    shares = {name: 100 * float(p) / n if n else float("nan")
              for name, p, n in zip(dataset.labels, present, labelled, strict=True)}
    return report, shares


def main(cfg: DictConfig) -> None:
    """tools/check_data.py's task: exit status 1 when problems were listed."""
    if run(cfg):
        sys.exit(1)


def prepare(cfg: DictConfig) -> None:
    """tools/prepare_data.py's task: generate the data where the dataset config says how."""
    if not cfg.data.get("prepare"):
        print(f"data.root={cfg.data.root}: this dataset needs no preparation")
        return
    print(f"prepared: {instantiate(cfg.data.prepare)()}")
