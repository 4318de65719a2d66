"""`eval.py`: a checkpoint's model on the val split of its dataset, on whole images, with the
paper's output-stride switch, multi-scale and flip; metrics and their files in the run dir."""

import time
from pathlib import Path

from omegaconf import DictConfig
from tqdm import tqdm

from deeplab.builders.checkpoint import model_from_checkpoint
from deeplab.builders.data import evaluation_loader, prepare_data
from deeplab.builders.model import inference_settings, pick_device
from deeplab.errors import ConfigError
from deeplab.evaluation import report
from deeplab.inference.metrics import SegmentationMetrics
from deeplab.inference.multiscale import predict_probs
from deeplab.schema import validate_eval


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
    validate_eval(cfg.eval)
    model, config = model_from_checkpoint(cfg.ckpt_path)
    if cfg.data.num_workers is not None:
        config.data.num_workers = cfg.data.num_workers
    other_root = cfg.data.root is not None
    if other_root:
        move_dataset(config.data, cfg.data.root)
    split = cfg.data.split or config.data.val_split
    config.data.val_split = split
    device = pick_device(cfg.device)
    output_stride = cfg.eval.output_stride or config.model.output_stride
    model.set_output_stride(output_stride)
    model.to(device)
    settings = inference_settings(cfg.eval, config.data.crop_size)

    if not other_root:
        prepare_data(config.data)  # the synthetic set is rewritten if it went missing; real data is only read
    loader = evaluation_loader(config.data, split)
    metrics = SegmentationMetrics(config.data.num_classes, ignore_index=config.data.ignore_index).to(device)
    images, start = 0, time.perf_counter()
    for batch in tqdm(loader, desc=f"eval {split}", unit="img", dynamic_ncols=True):
        probs = predict_probs(model, batch["image"].to(device), **settings)
        metrics.update(probs.argmax(dim=1), batch["mask"].to(device))
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
        "ckpt_path": str(cfg.ckpt_path),
        "data_root": config.data.root,
        "split": split,
        "train_output_stride": config.model.output_stride,
        "output_stride": output_stride,
        **settings,
        **({"window": None, "stride": None} if settings["mode"] == "whole" else {}),  # unused: not reported
        "device": str(device),
    }
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "metrics.json", summary)
    report.write_csv(out / "per_class_iou.csv", rows)
    report.plot_confusion(out / "confusion_matrix.png", confmat, class_names)
    print(report.format_table(rows, summary["mIoU"], summary["pixel_acc"]))
    print(f"{images} images in {seconds:.1f} s ({summary['images_per_sec']:.2f} images/s); "
          f"results in {out}")
    return summary
