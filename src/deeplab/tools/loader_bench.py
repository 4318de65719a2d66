"""How fast the training loader delivers augmented batches, alone, for several worker counts."""

import json
import time

from omegaconf import DictConfig

from deeplab.builders.model import resolve_normalisation
from deeplab.training.datamodule import build_datamodule


def time_loader(data: DictConfig, aug: DictConfig, batches: int) -> tuple[int, float]:
    """Images delivered and seconds taken by the training loader over `batches` batches, after
    the first (workers started, first batch decoded: not counted)."""
    datamodule = build_datamodule(data, aug)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = iter(datamodule.train_dataloader())
    next(loader)
    images, start = 0, time.perf_counter()
    for _ in range(batches):
        batch = next(loader, None)
        if batch is None:
            break
        images += batch["image"].shape[0]
    return images, time.perf_counter() - start


def measure(cfg: DictConfig) -> list[dict]:
    resolve_normalisation(cfg)
    results = []
    for workers in cfg.workers:
        cfg.data.num_workers = int(workers)
        images, seconds = time_loader(cfg.data, cfg.aug, cfg.batches)
        rate = images / seconds
        results.append({"workers": int(workers), "images": images, "seconds": seconds, "images_per_sec": rate,
                        "images_per_sec_per_worker": rate / max(1, int(workers))})
    return results


def report(cfg: DictConfig) -> list[dict]:
    results = measure(cfg)
    print(f"loader: {cfg.data.root}, aug {cfg.aug._target_.rsplit('.', 1)[-1]}, crop {cfg.data.crop_size}, "
          f"batch {cfg.data.batch_size}")
    print(f"{'workers':>8} {'images/s':>10} {'per worker':>11}")
    for r in results:
        print(f"{r['workers']:>8} {r['images_per_sec']:>10.1f} {r['images_per_sec_per_worker']:>11.1f}")
    print(json.dumps(results))
    return results
