"""eval.py's parts for the sigmoid tasks: the threshold sweep of a binary model, and the whole
evaluation of a multilabel one (each label's IoU, F1, precision and recall, their means, the
per-image results and the bootstrap interval of the mean IoU)."""

import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from deeplab.errors import ConfigError
from deeplab.evaluation import report
from deeplab.inference.metrics import LabelMetrics
from deeplab.inference.multiscale import predict_classes, predict_probs
from deeplab.inference.per_image import bootstrap_interval, miou
from deeplab.inference.pixels import normaliser
from deeplab.inference.prepare import autocast
from deeplab.inference.task import Task

BINS = 100  # the sweep's thresholds: 0.01, 0.02, ..., 0.99


class ThresholdSweep:
    """task=binary: histograms of the foreground probability of the true foreground and background
    pixels, from which the F1 at every threshold k / BINS follows without another pass."""

    def __init__(self, device: torch.device):
        self.foreground = torch.zeros(BINS, dtype=torch.float64, device=device)
        self.background = torch.zeros(BINS, dtype=torch.float64, device=device)

    def update(self, probs: torch.Tensor, target: torch.Tensor, ignore_index: int) -> None:
        bins = (probs * BINS).long().clamp(0, BINS - 1)  # bin k holds probabilities in [k, k + 1) / BINS
        for histogram, label in ((self.foreground, 1), (self.background, 0)):
            histogram += torch.bincount(bins[target == label], minlength=BINS).double()

    def best(self) -> dict:
        """The threshold of highest F1 and that F1 (at the bins' resolution: p >= threshold is foreground)."""
        above_fg = self.foreground.flip(0).cumsum(0).flip(0)  # [k]: pixels in bins k.. (p >= k / BINS)
        above_bg = self.background.flip(0).cumsum(0).flip(0)
        tp, fp = above_fg[1:], above_bg[1:]  # threshold k / BINS for k = 1 .. BINS - 1
        fn = self.foreground.sum() - tp
        f1 = torch.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn).clamp(min=1), torch.zeros_like(tp))
        k = int(f1.argmax())
        return {"threshold": round((k + 1) / BINS, 4), "F1": float(f1[k]), "bins": BINS}


class LabelCounts:
    """tp, fp and fn of each label in every image, in order (per_image's ImageCounts for labels)."""

    def __init__(self, ignore_index: int):
        self.ignore_index = ignore_index
        self.names: list[str] = []
        self.counts: list[np.ndarray] = []  # (3, labels) an image

    def update(self, pred: torch.Tensor, target: torch.Tensor, names) -> None:
        valid = target != self.ignore_index
        truth, guess = (target == 1) & valid, (pred == 1) & valid
        tp = (truth & guess).flatten(2).sum(-1)
        fp = (~truth & guess & valid).flatten(2).sum(-1)
        fn = (truth & ~guess).flatten(2).sum(-1)
        for index, name in enumerate(names):
            self.names.append(str(name))
            self.counts.append(torch.stack([tp[index], fp[index], fn[index]]).cpu().numpy())

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        stacked = np.stack(self.counts)
        return stacked[:, 0], stacked[:, 1], stacked[:, 2]


def evaluate_labels(cfg: DictConfig, model, config: DictConfig, loader, task: Task, settings: dict,
                    device: torch.device, precision: str, output_stride: int) -> dict:
    """eval.py for task=multilabel: metrics.json, per_label.csv and per_image.csv."""
    if (cfg.eval.get("trimap") or {}).get("widths"):
        raise ConfigError(f"eval.trimap.widths={list(cfg.eval.trimap.widths)} is not allowed with task=multilabel; "
                          "allowed: [] (the bands follow the boundaries of one class map)")
    names, ignore = list(config.data.class_names), config.data.ignore_index
    metrics = LabelMetrics(len(names), ignore_index=ignore).to(device)
    counts, normalise = LabelCounts(ignore), normaliser(config.data)
    sweeps = [ThresholdSweep(device) for _ in names] if cfg.eval.get("threshold_sweep") else []
    images, start = 0, time.perf_counter()
    for batch in tqdm(loader, desc=f"eval {config.data.val_split}", unit="img", dynamic_ncols=True):
        with autocast(precision, device):
            probs = predict_probs(model, normalise(batch["image"].to(device)), **settings).float()
        pred, target = predict_classes(probs, task), batch["mask"].to(device).long()
        metrics.update(pred, target)
        counts.update(pred, target, batch["name"])
        for label, sweep in enumerate(sweeps):
            sweep.update(probs[:, label], target[:, label], ignore)
        images += batch["image"].shape[0]
    seconds = time.perf_counter() - start
    result = {k: v.tolist() for k, v in metrics.compute().items()}
    rows = [{"label": name, "iou": result["per_label_iou"][i], "f1": result["per_label_f1"][i],
             "precision": result["per_label_precision"][i], "recall": result["per_label_recall"][i]}
            for i, name in enumerate(names)]
    summary = {"task": "multilabel", "threshold": task.threshold, "mIoU": result["mIoU"], "mF1": result["mF1"],
               "pixel_acc": result["pixel_acc"], "per_label": {r["label"]: {k: r[k] for k in r if k != "label"}
                                                               for r in rows},
               "per_class_iou": {r["label"]: r["iou"] for r in rows},  # as multiclass names it, for tools/compare.py
               "images": images, "images_per_sec": images / seconds if seconds > 0 else None, "seconds": seconds,
               **report.run_record(cfg, config, config.data.val_split, output_stride, settings, device, precision,
                                 getattr(model, "backend", "pytorch"))}
    if sweeps:  # each label's own best threshold (the model keeps one for all)
        summary["threshold_sweep"] = {name: sweep.best() for name, sweep in zip(names, sweeps, strict=True)}
    if cfg.eval.get("bootstrap", 0):
        summary["mIoU_ci95"] = bootstrap_interval(counts, cfg.eval.bootstrap)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "metrics.json", summary)
    report.write_csv(out / "per_label.csv", rows)
    tp, fp, fn = counts.arrays()
    np.savez(out / "per_image_counts.npz", names=np.array(counts.names), tp=tp, fp=fp, fn=fn)  # tools/compare.py
    report.write_csv(out / "per_image.csv", [{"image": name, "mIoU": float(miou(tp[i], fp[i], fn[i])),
                                              **{f"iou/{n}": _iou(tp[i, c], fp[i, c], fn[i, c])
                                                 for c, n in enumerate(names)}}
                                             for i, name in enumerate(counts.names)])
    print(f"{'label':<20}{'IoU':>8}{'F1':>8}{'precision':>11}{'recall':>8}")
    for row in rows:
        print(f"{row['label']:<20}" + "".join(f"{100 * row[k]:>{w}.2f}" for k, w in
                                              (("iou", 8), ("f1", 8), ("precision", 11), ("recall", 8))))
    print(f"mean IoU {100 * summary['mIoU']:.2f}%  mean F1 {100 * summary['mF1']:.2f}%  (threshold {task.threshold:g})")
    for name, best in summary.get("threshold_sweep", {}).items():
        print(f"threshold of best F1 for {name}: {best['threshold']:g} (F1 {100 * best['F1']:.2f}%)")
    if "mIoU_ci95" in summary:
        low, high = summary["mIoU_ci95"]
        print(f"mean IoU 95% interval over images (bootstrap, {cfg.eval.bootstrap} resamples): "
              f"{100 * low:.2f}% .. {100 * high:.2f}%")
    print(f"{images} images in {seconds:.1f} s; results in {out} (Boundary IoU and worst.png are drawn from one class "
          "map: task=multiclass and binary)")
    return summary


def _iou(tp, fp, fn) -> float:
    union = tp + fp + fn
    return float(tp / union) if union else float("nan")
