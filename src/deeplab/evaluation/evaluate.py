"""`eval.py`: a checkpoint's model on the val split of its dataset, on whole images, with the
paper's output-stride switch, multi-scale and flip; metrics and their files in the run dir."""

import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from deeplab.builders.data import evaluation_loader, prepare_data
from deeplab.builders.model import evaluation_task, inference_model, inference_settings, pick_device
from deeplab.data.base import as_rgb
from deeplab.data.preview import class_colours
from deeplab.deploy.backends import check_precision, load_model, runtime_device
from deeplab.errors import ConfigError
from deeplab.evaluation import report
from deeplab.evaluation.labels import ThresholdSweep, evaluate_labels
from deeplab.inference.boundary import boundary_counts, trimap_band
from deeplab.inference.metrics import SegmentationMetrics, foreground_scores
from deeplab.inference.multiscale import predict_classes, predict_probs
from deeplab.inference.per_image import ImageCounts, bootstrap_interval, lowest_first, miou, per_image_rows
from deeplab.inference.pixels import normaliser
from deeplab.inference.prepare import autocast
from deeplab.inference.task import MULTICLASS, Task
from deeplab.schema import validate_evaluate


def move_dataset(data: DictConfig, root: str) -> None:
    """Points the checkpoint's dataset at another root. The stored config is resolved, so the
    dataset (and its preparation step) hold the training-time path themselves, not ${data.root}."""
    if not Path(root).is_dir():
        raise ConfigError(f"data.root={root} does not exist or is not a folder; give the dataset to evaluate")
    old = data.root
    data.root = str(root)
    for node in (data.get("dataset"), data.get("prepare")):
        if node is not None and node.get("root") == old:
            node.root = str(root)


def evaluate(cfg: DictConfig) -> dict:
    validate_evaluate(cfg)
    model, config = load_model(cfg.ckpt_path)  # a checkpoint, a model folder, or an exported graph
    if cfg.data.num_workers is not None:
        config.data.num_workers = cfg.data.num_workers
    other_root = cfg.data.root is not None
    if other_root:
        move_dataset(config.data, cfg.data.root)
    split = cfg.data.split or config.data.val_split
    config.data.val_split = split
    device = pick_device(runtime_device(model, cfg.device))
    check_precision(model, cfg.eval.get("precision", "fp32"))
    output_stride = cfg.eval.output_stride or config.model.output_stride
    model.set_output_stride(output_stride)
    model, precision = inference_model(model, cfg.eval, device)
    task = evaluation_task(config, cfg.eval)
    settings = inference_settings(cfg.eval, config.data.crop_size, task)

    if not other_root:
        prepare_data(config.data)  # the synthetic set is rewritten if it went missing; real data is only read
    loader = evaluation_loader(config.data, split)
    if task.name == "multilabel":
        return evaluate_labels(cfg, model, config, loader, task, settings, device, precision, output_stride)
    num_classes, ignore = config.data.num_classes, config.data.ignore_index
    metrics = SegmentationMetrics(num_classes, ignore_index=ignore).to(device)
    trimap = cfg.eval.get("trimap") or {}
    boundary = trimap.get("boundary") or config.data.get("boundary", "labels")
    bands = {w: SegmentationMetrics(num_classes, ignore_index=ignore).to(device) for w in trimap.get("widths", [])}
    ratio = (cfg.eval.get("boundary_iou") or {}).get("dilation_ratio", 0.02)
    edges = torch.zeros(2, num_classes, dtype=torch.long, device=device)  # Boundary IoU intersection, union
    counts = ImageCounts(num_classes, ignore)
    normalise = normaliser(config.data)
    sweep = ThresholdSweep(device) if task.name == "binary" and cfg.eval.get("threshold_sweep") else None
    images, start, band_seconds = 0, time.perf_counter(), 0.0
    for batch in tqdm(loader, desc=f"eval {split}", unit="img", dynamic_ncols=True):
        with autocast(precision, device):
            probs = predict_probs(model, normalise(batch["image"].to(device)), **settings).float()
        pred, target = predict_classes(probs, task), batch["mask"].to(device).long()
        metrics.update(pred, target)
        if sweep is not None:
            sweep.update(probs[:, 0], target, ignore)
        band_start = time.perf_counter()
        for width, band_metrics in bands.items():  # the same metric, on the pixels near a boundary only
            band_metrics.update(pred, torch.where(trimap_band(target, width, boundary, ignore), target, ignore))
        band_seconds += time.perf_counter() - band_start
        edges += torch.stack(boundary_counts(pred, target, num_classes, ignore, ratio))
        counts.update(pred, target, batch["name"])
        images += batch["image"].shape[0]
    seconds = time.perf_counter() - start
    result = metrics.compute()

    class_names = list(config.data.class_names)
    confmat = result["confmat"].cpu().numpy()
    rows = report.per_class_rows(class_names, result["per_class_iou"].tolist(), confmat)
    summary = {
        "mIoU": result["mIoU"].item(),
        "pixel_acc": result["pixel_acc"].item(),
        "per_class_iou": {row["class"]: row["iou"] for row in rows},
        "images": images,
        "images_per_sec": images / seconds if seconds > 0 else None,
        "seconds": seconds,
        **report.run_record(cfg, config, split, output_stride, settings, device, precision,
                            getattr(model, "backend", "pytorch")),
    }
    if task.name == "binary":  # the foreground's scores, named as in summary.json without val/
        summary.update({"task": "binary", "threshold": task.threshold, **foreground_scores(result["confmat"])})
        if sweep is not None:
            summary["threshold_sweep"] = sweep.best()
    intersection, union = edges.cpu().numpy()
    edge_iou = np.where(union > 0, intersection / np.maximum(union, 1), np.nan)
    summary["boundary_iou"] = {"mean": float(np.nanmean(edge_iou)) if (union > 0).any() else None,
                               "dilation_ratio": ratio,
                               "per_class": {n: None if np.isnan(v) else float(v)
                                             for n, v in zip(class_names, edge_iou, strict=True)}}
    if cfg.eval.get("bootstrap", 0):
        summary["mIoU_ci95"] = bootstrap_interval(counts, cfg.eval.bootstrap)
    if bands:
        trimap_rows = [{"width": w, "mIoU": m.compute()["mIoU"].item(), "pixel_acc": m.compute()["pixel_acc"].item()}
                       for w, m in bands.items()]
        summary["trimap"] = {str(r["width"]): {"mIoU": r["mIoU"], "pixel_acc": r["pixel_acc"]} for r in trimap_rows}
        summary["trimap_boundary"] = boundary
        summary["trimap_seconds_per_image"] = band_seconds / max(images, 1)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "metrics.json", summary)
    report.write_csv(out / "per_class_iou.csv", rows)
    report.write_csv(out / "per_image.csv", per_image_rows(counts, class_names))
    tp, fp, fn = counts.arrays()  # for tools/compare.py's paired interval
    np.savez(out / "per_image_counts.npz", names=np.array(counts.names), tp=tp, fp=fp, fn=fn)
    report.plot_confusion(out / "confusion_matrix.png", confmat, class_names)
    if cfg.eval.get("num_worst", 0):
        worst = worst_cases(model, loader.dataset, counts, cfg.eval.num_worst, settings, config.data, device, task)
        palette = class_colours(config.data.get("colors"), num_classes)
        report.plot_worst(out / "worst.png", worst, palette, ignore)
        summary["worst"] = [{"image": w["name"], "mIoU": w["score"]} for w in worst]
        report.write_json(out / "metrics.json", summary)
    if bands:
        report.write_csv(out / "trimap.csv", trimap_rows)
        report.plot_trimap(out / "trimap.png", {f"OS{output_stride}": trimap_rows}, summary["mIoU"], boundary)
    print(report.format_table(rows, summary["mIoU"], summary["pixel_acc"]))
    if task.name == "binary":
        print(f"{class_names[1]} (threshold {task.threshold:g}): IoU {100 * summary['fg_IoU']:.2f}%  Dice "
              f"{100 * summary['Dice']:.2f}%  precision {100 * summary['precision']:.2f}%  recall "
              f"{100 * summary['recall']:.2f}%")
    if "threshold_sweep" in summary:
        best = summary["threshold_sweep"]
        print(f"threshold of best F1 on {split}: {best['threshold']:g} (F1 {100 * best['F1']:.2f}%; the model keeps "
              f"{task.threshold:g}: eval.threshold={best['threshold']:g} evaluates or predicts with it)")
    if "mIoU_ci95" in summary:
        low, high = summary["mIoU_ci95"]
        print(f"mIoU 95% interval over images (bootstrap, {cfg.eval.bootstrap} resamples): "
              f"{100 * low:.2f}% .. {100 * high:.2f}%")
    if summary["boundary_iou"]["mean"] is not None:
        print(f"Boundary IoU (d = {ratio:g} x diagonal): {100 * summary['boundary_iou']['mean']:.2f}%")
    for row in trimap_rows if bands else []:
        print(f"trimap {row['width']:>3} px ({boundary}): mIoU {100 * row['mIoU']:6.2f}%  "
              f"pixel acc {100 * row['pixel_acc']:6.2f}%")
    print(f"{images} images in {seconds:.1f} s ({summary['images_per_sec']:.2f} images/s); "
          f"results in {out}")
    return summary


def worst_cases(model, dataset, counts: ImageCounts, number: int, settings: dict, data: DictConfig, device,
                task: Task = MULTICLASS) -> list:
    """The `number` images of lowest mIoU (images without labelled pixels last), predicted again
    for the picture: their RGB, ground truth and prediction."""
    tp, fp, fn = counts.arrays()
    scores = miou(tp, fp, fn)
    order = lowest_first(scores, number)
    normalise = normaliser(data)
    rows = []
    for index in order:
        sample = dataset[int(index)]
        with torch.no_grad():
            pred = predict_classes(predict_probs(model, normalise(sample["image"][None].to(device)), **settings),
                                   task)[0]
        pixels = sample["image"].permute(1, 2, 0).numpy()
        rows.append({"name": sample["name"], "score": float(scores[index]),
                     "image": as_rgb(pixels, data.get("max_pixel_value", 255)),
                     "truth": sample["mask"].numpy(), "pred": pred.cpu().numpy()})
    return rows


def main(cfg: DictConfig) -> float:
    """eval.py's task: the mIoU, which a sweep over eval settings optimises."""
    return evaluate(cfg)["mIoU"]
