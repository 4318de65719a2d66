"""`tools/check_data.py`: every sample of every split read once; counts, sizes, class frequencies
and every problem, each naming its file."""

import json

from hydra.utils import instantiate
from omegaconf import DictConfig

from deeplab.data.check import check_split, format_report
from deeplab.errors import DatasetError


def run(cfg: DictConfig) -> int:
    """Prints a report per split and returns the number of problems found."""
    data = cfg.data
    splits = list(cfg.splits) if cfg.splits else list(dict.fromkeys([data.train_split, data.val_split]))
    if data.get("prepare"):
        instantiate(data.prepare)()  # what training would read: the generated or converted files
    build = instantiate(data.dataset)
    problems, notes, summary = [], 0, {}
    for split in splits:
        try:
            dataset = build(split=split)
        except DatasetError as err:
            problems.append(str(err))
            print(f"split {split}: cannot be opened\n  problem: {err}")
            continue
        report = check_split(dataset, split, data.num_classes, data.ignore_index)
        print(format_report(report, list(data.class_names)))
        problems.extend(report.problems)
        notes += len(report.notes)
        summary[split] = {"samples": report.samples, "problems": len(report.problems), "notes": len(report.notes)}
    found = f"{len(problems)} problems found" if problems else "no problems found"
    print(found + (f" ({notes} notes: conversions training makes as it reads)" if notes else ""))
    print(json.dumps({"splits": summary, "problems": len(problems), "notes": notes}))
    return len(problems)
