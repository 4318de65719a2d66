"""`tools/learn.py`: does the project's training learn as well as a plain loop? For each seed it
trains the composed model through train.py's own pipeline (DataModule, LightningModule, Trainer)
and smp's DeepLabV3Plus with the same encoder through a plain PyTorch loop, as smp's users write
it, over the same images in the same order with the same crops, optimizer, schedule, epochs, loss
and precision; then evaluates both on one split with one metric, and writes learn.json and learn.md."""

import copy
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from deeplab.builders.checkpoint import model_from_checkpoint
from deeplab.builders.data import evaluation_loader, image_size, label_map
from deeplab.builders.model import inference_settings, resolve_normalisation
from deeplab.data.base import open_split
from deeplab.data.sampling import ResumableSampler
from deeplab.errors import ConfigError
from deeplab.inference.metrics import SegmentationMetrics
from deeplab.inference.multiscale import predict_classes, predict_probs
from deeplab.inference.pixels import normaliser
from deeplab.inference.prepare import autocast, inference_precision, prepare_for_inference
from deeplab.log import LOG
from deeplab.model.encoder import resolve_encoder_name
from deeplab.training.precision import autocast_dtype, resolve_precision
from deeplab.training.run import train

MATCHES = ("smp", "paper", "none")
MODELS = ("deeplab", "smp")  # this project's, through train.py; smp's, through a plain loop
# smp.DeepLabV3Plus's head: rates 12/24/36, dropout 0.5, a separable 3x3 conv after the ASPP, one
# separable 3x3 refinement conv, and separable convs with nothing between depthwise and pointwise
SMP_HEAD = {"rates": [12, 24, 36], "dropout": 0.5, "post_conv": True, "num_convs": 1, "depthwise_bn_relu": False}


def matched(cfg: DictConfig, match: str) -> tuple[DictConfig, dict]:
    """The project's config and smp's head arguments under learn.match: smp (both get smp's head),
    paper (both get this config's rates and dropout; smp has one refinement conv whatever is asked),
    none (each its own defaults)."""
    if match not in MATCHES:
        raise ConfigError(f"learn.match={match} is not allowed; allowed: {', '.join(MATCHES)}")
    ours = copy.deepcopy(cfg)
    if match == "smp":
        ours.model.aspp.rates = SMP_HEAD["rates"]
        ours.model.aspp.dropout = SMP_HEAD["dropout"]
        ours.model.aspp.post_conv = SMP_HEAD["post_conv"]
        ours.model.decoder.num_convs = SMP_HEAD["num_convs"]
        ours.model.aspp.depthwise_bn_relu = ours.model.decoder.depthwise_bn_relu = SMP_HEAD["depthwise_bn_relu"]
    peer = {} if match != "paper" else {"decoder_atrous_rates": tuple(cfg.model.aspp.rates),
                                         "decoder_aspp_dropout": float(cfg.model.aspp.dropout)}
    return ours, peer


def check_peer(cfg: DictConfig) -> None:
    """What smp's DeepLabV3Plus cannot be, said before anything trains."""
    stride = int(cfg.model.output_stride)
    if stride not in (8, 16):
        raise ConfigError(f"tools/learn.py needs os=8 or os=16 (smp's DeepLabV3Plus has no output stride {stride})")
    if cfg.model.decoder is None:
        raise ConfigError("tools/learn.py compares DeepLabV3+ models: decoder=deeplabv3 has no smp peer here")
    if int(cfg.trainer.max_steps) != -1:
        raise ConfigError(f"trainer.max_steps={cfg.trainer.max_steps}: tools/learn.py trains both models for "
                          "trainer.max_epochs; leave trainer.max_steps=-1")


def check_fresh(out: Path) -> None:
    """A folder that holds an earlier comparison is refused: train.py's runs would land on its
    checkpoints, and Hydra would rewrite its .hydra/ records (checked before Hydra starts, too)."""
    earlier = sorted(p.name for p in out.glob("seed*") if p.is_dir()) if out.is_dir() else []
    if earlier or (out / "learn.json").exists():
        found = ", ".join(earlier) or "learn.json"
        raise ConfigError(f"hydra.run.dir={out} holds an earlier tools/learn.py run ({found}); give another "
                          "hydra.run.dir or leave it to the default (a new folder a run)")


def smp_deeplab(cfg: DictConfig, head: dict) -> nn.Module:
    import segmentation_models_pytorch as smp

    stride = int(cfg.model.output_stride)
    return smp.DeepLabV3Plus(encoder_name=resolve_encoder_name(cfg.model.backbone.name),
                             encoder_weights=cfg.model.backbone.weights, encoder_output_stride=stride,
                             classes=cfg.data.num_classes, in_channels=cfg.data.get("in_channels", 3), **head)


def train_project(cfg: DictConfig, seed: int, run_dir: Path) -> tuple[nn.Module, dict]:
    """train.py's pipeline in a run directory of its own; the model of its last checkpoint."""
    run = copy.deepcopy(cfg)
    run.seed, run.paths.output_dir = seed, str(run_dir)
    start = time.perf_counter()
    train(run)
    wall = time.perf_counter() - start
    summary = json.loads((run_dir / "summary.json").read_text())
    model = model_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")[0]
    return model, {"wall_seconds": wall, "train_images_per_sec": summary.get("train_images_per_sec")}


def plain_loader(cfg: DictConfig, seed: int) -> DataLoader:
    """The training split with train.py's transform and its draws: ResumableSampler with the run's
    seed gives the same order and the same augmentation seed to each sample as the DataModule's."""
    data = cfg.data
    dataset = open_split(instantiate(data.dataset), data.train_split, instantiate(cfg.aug), data.num_classes,
                         data.ignore_index, label_map(data), image_size(data))
    return DataLoader(dataset, batch_size=data.batch_size, sampler=ResumableSampler(dataset, seed=seed),
                      drop_last=True, num_workers=data.num_workers, persistent_workers=data.num_workers > 0)


def train_plain_loop(cfg: DictConfig, model: nn.Module, seed: int, device: torch.device) -> dict:
    """The loop smp's README leads its users to write, over the project's training split with the
    same transform and the same draws (sampler order and augmentation seeds) as train.py's."""
    data = cfg.data
    loader = plain_loader(cfg, seed)
    sampler = loader.sampler
    epochs = int(cfg.trainer.max_epochs)
    total = epochs * len(loader)
    optimizer = instantiate(cfg.optim.optimizer)(params=model.parameters())
    power = float(cfg.optim.get("poly_power", 0.9))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (1 - step / total) ** power)
    loss_fn = nn.CrossEntropyLoss(ignore_index=data.ignore_index) if "CrossEntropy" in cfg.loss._target_ \
        else instantiate(cfg.loss)
    normalise, dtype = normaliser(data), autocast_dtype(cfg.trainer.precision)
    model.to(device).train()
    images, train_seconds, start = 0, 0.0, time.perf_counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in loader:
            step_start = time.perf_counter()
            inputs, masks = normalise(batch["image"].to(device)), batch["mask"].to(device).long()
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = loss_fn(model(inputs), masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            train_seconds += time.perf_counter() - step_start
            images += inputs.shape[0]
        LOG.info(f"smp plain loop: epoch {epoch + 1}/{epochs}, loss {loss.item():.4f}")
    return {"wall_seconds": time.perf_counter() - start, "train_images_per_sec": images / train_seconds}


@torch.no_grad()
def test_metrics(cfg: DictConfig, model: nn.Module, split: str, as_trained: bool, device: torch.device) -> dict:
    """mIoU, pixel accuracy and per-class IoU on `split`, whole images, one metric for both models:
    ours through eval.py's path (eval.fast, grid padding), smp's as its users run it (a forward
    on the image padded to a multiple of 16, the padding cut off the logits)."""
    loader = evaluation_loader(cfg.data, split)
    normalise = normaliser(cfg.data)
    metrics = SegmentationMetrics(cfg.data.num_classes, ignore_index=cfg.data.ignore_index).to(device)
    settings = inference_settings(cfg.eval, cfg.data.crop_size)
    model = model.to(device)
    model = model.eval() if as_trained else prepare_for_inference(model, cfg.eval.get("fast", True))
    precision = inference_precision(cfg.eval.get("precision", "fp32"), device)
    for batch in loader:
        images = normalise(batch["image"].to(device))
        if as_trained:
            height, width = images.shape[-2:]
            padded = F.pad(images, (0, -width % 16, 0, -height % 16))
            pred = model(padded)[..., :height, :width].argmax(dim=1)
        else:
            with autocast(precision, device):
                pred = predict_classes(predict_probs(model, images, **settings).float())
        metrics.update(pred, batch["mask"].to(device).long())
    result = metrics.compute()
    return {"mIoU": result["mIoU"].item(), "pixel_acc": result["pixel_acc"].item(),
            "per_class_iou": dict(zip(cfg.data.class_names, result["per_class_iou"].tolist(), strict=True))}


def summarise(runs: list[dict]) -> dict:
    """Mean and standard deviation (n - 1) of each model's test mIoU over the seeds."""
    out = {}
    for model in [m for m in MODELS if m in runs[0]]:
        values = [r[model]["mIoU"] for r in runs]
        out[model] = {"mIoU_mean": statistics.mean(values),
                      "mIoU_std": statistics.stdev(values) if len(values) > 1 else None}
    return out


def markdown(result: dict) -> str:
    runs, names = result["runs"], result["class_names"]
    lines = [f"# Learning: this project against smp's DeepLabV3Plus in a plain loop ({result['settings']})", "",
             "| seed | model | test mIoU | pixel acc | train images/s | wall s | " + " | ".join(names) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(names)]
    for run in runs:
        for model in [m for m in MODELS if m in run]:
            r = run[model]
            ious = " | ".join(f"{100 * r['per_class_iou'][n]:.1f}" for n in names)
            lines.append(f"| {run['seed']} | {model} | {100 * r['mIoU']:.2f} | {100 * r['pixel_acc']:.1f} | "
                         f"{r['train_images_per_sec']:.2f} | {r['wall_seconds']:.0f} | {ious} |")
    lines.append("")
    for model, s in result["summary"].items():
        spread = f" ± {100 * s['mIoU_std']:.2f}" if s["mIoU_std"] is not None else ""
        lines.append(f"- {model}: mean test mIoU {100 * s['mIoU_mean']:.2f}{spread} over {len(runs)} seeds")
    return "\n".join(lines) + "\n"


def check_task(cfg: DictConfig) -> None:
    """smp's model in the plain loop is trained with cross-entropy over classes: multiclass only."""
    task = (cfg.get("task") or {}).get("name", "multiclass")
    if task != "multiclass":
        raise ConfigError(f"task={task} is not allowed in tools/learn.py; allowed: multiclass (the comparison with "
                          "smp trains both with softmax cross-entropy)")


def run(cfg: DictConfig) -> dict:
    learn = cfg.learn
    check_task(cfg)
    resolve_normalisation(cfg)
    resolve_precision(cfg.trainer)
    check_peer(cfg)
    ours, head = matched(cfg, str(learn.match))
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.trainer.accelerator != "cpu" else "cpu")
    out = Path(cfg.paths.output_dir)
    models = [str(m) for m in learn.models]
    if not models or set(models) - set(MODELS) or len(set(models)) < len(models):
        raise ConfigError(f"learn.models={models} is not allowed; allowed: a list of {', '.join(MODELS)}, each once")
    check_fresh(out)
    runs = []
    for seed in learn.seeds:
        seed = int(seed)
        run = {"seed": seed}
        if "deeplab" in models:
            LOG.info(f"seed {seed}: this project's training (train.py's pipeline)")
            model, timing = train_project(ours, seed, out / f"seed{seed}" / "deeplab")
            run["deeplab"] = {**test_metrics(ours, model, learn.split, as_trained=False, device=device), **timing}
        if "smp" in models:
            LOG.info(f"seed {seed}: smp's DeepLabV3Plus in a plain loop")
            torch.manual_seed(seed)
            peer = smp_deeplab(cfg, head)
            timing = train_plain_loop(cfg, peer, seed, device)
            run["smp"] = {**test_metrics(cfg, peer, learn.split, as_trained=True, device=device), **timing}
        runs.append(run)
        LOG.info(f"seed {seed}: test mIoU " + ", ".join(f"{m} {100 * run[m]['mIoU']:.2f}" for m in models))
    settings = (f"{cfg.model.backbone.name} OS{cfg.model.output_stride}, match={learn.match}, "
                f"{cfg.trainer.max_epochs} epochs, {cfg.trainer.precision}, split {learn.split}")
    result = {"settings": settings, "class_names": list(cfg.data.class_names), "runs": runs,
              "summary": summarise(runs), "config": OmegaConf.to_container(ours, resolve=True)}
    (out / "learn.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "learn.md").write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {out / 'learn.json'} and {out / 'learn.md'}")
    return result
