"""`tools/bench.py`: training-step and inference speed of the composed model, through Lightning
and through a bare PyTorch loop over the same nn.Module and batch; the ratio is the headline."""

import json
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset

from deeplab.builders.fast import apply_fast_path, to_channels_last
from deeplab.builders.model import build_network, inference_settings, resolve_normalisation
from deeplab.errors import ConfigError
from deeplab.inference.complexity import count_madds
from deeplab.inference.multiscale import predict_probs
from deeplab.inference.pixels import normaliser
from deeplab.inference.prepare import autocast, inference_precision, prepare_for_inference
from deeplab.inference.task import task_of
from deeplab.log import LOG
from deeplab.model.encoder import resolve_encoder_name
from deeplab.tools.bench_backends import print_backends, run_backends
from deeplab.tools.loader_bench import time_loader
from deeplab.tools.step_parts import time_parts
from deeplab.training.finetune import parameter_groups
from deeplab.training.precision import autocast_dtype, resolve_precision
from deeplab.training.run import segmentation_module


class SameBatch(Dataset):
    """One fixed batch, served `length` times: the model's cost without any data loading."""

    def __init__(self, batch: dict, length: int):
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.batch


class StepTimer(pl.Callback):
    def __init__(self, device: torch.device):
        self.device, self.times, self._start = device, [], None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        _sync(self.device)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        _sync(self.device)
        self.times.append(time.perf_counter() - self._start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def framework_steps(cfg: DictConfig, model, batch: dict, steps: int, device: torch.device) -> list[float]:
    """Seconds per training step through the framework's LightningModule and a Lightning Trainer
    with the configured precision; the batch is already in memory."""
    timer = StepTimer(device)
    trainer = pl.Trainer(accelerator=device.type, devices=1, precision=cfg.trainer.precision, max_steps=steps,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, callbacks=[timer],
                         benchmark=cfg.trainer.benchmark)
    loader = DataLoader(SameBatch(batch, steps), batch_size=None)
    trainer.fit(segmentation_module(cfg, model), train_dataloaders=loader)
    return timer.times


def bare_steps(cfg: DictConfig, model, batch: dict, steps: int, device: torch.device,
               channels_last: bool | None = None) -> list[float]:
    """Seconds per training step of a hand-written loop: the same module, loss, optimizer,
    schedule and precision, nothing else."""
    model.to(device).train()
    loss_fn = instantiate(cfg.loss)
    optim = cfg.optim  # the parameter groups training uses: encoder and head (and bias) learning rates
    groups = parameter_groups(model, base_lr=optim.lr, encoder_lr_mult=optim.encoder_lr_mult,
                              bias_lr_mult=optim.bias_lr_mult)
    optimizer = instantiate(optim.optimizer)(params=groups)
    scheduler = instantiate(cfg.optim.scheduler)(optimizer, total_steps=steps)
    pixels, masks = batch["image"].to(device), batch["mask"].to(device).long()
    normalise = normaliser(cfg.data)
    dtype = autocast_dtype(cfg.trainer.precision)
    times = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        images = normalise(pixels)  # per step, as the LightningModule does after each transfer
        if cfg.model.channels_last if channels_last is None else channels_last:
            images = to_channels_last(images)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(model(images), masks)
        loss.backward()
        optimizer.step()
        scheduler.step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def inference_runner(cfg: DictConfig, model, batch: dict, device: torch.device,
                     as_trained: bool = False) -> Callable[[], None]:
    """One batch through eval.py's path: the prepared model (eval.fast), eval.precision;
    `as_trained`: another library's model as it comes, its plain forward and a softmax."""
    fast = cfg.eval.get("fast", True) and not as_trained
    model = prepare_for_inference(model.to(device), fast)
    precision = inference_precision(cfg.eval.get("precision", "fp32"), device)
    pixels = batch["image"].to(device)
    normalise = normaliser(cfg.data)
    settings = inference_settings(cfg.eval, cfg.data.crop_size, task_of(cfg))

    def run_once() -> None:
        images = normalise(pixels)
        if cfg.model.channels_last and not as_trained:
            images = to_channels_last(images)
        with autocast(precision, device):
            if as_trained:
                model(images).softmax(dim=1)
            else:
                predict_probs(model, images, **settings)

    return run_once


@torch.no_grad()
def time_alternately(runners: list[Callable[[], None]], steps: int, device: torch.device) -> list[list[float]]:
    """Seconds per call of each runner, taking turns call by call, so that the machine's drifts
    (and the memory allocator's state, which moves the time of a CPU pass by up to 30%) hit all alike."""
    times = [[] for _ in runners]
    for _ in range(steps):
        for runner, record in zip(runners, times, strict=True):
            _sync(device)
            start = time.perf_counter()
            runner()
            _sync(device)
            record.append(time.perf_counter() - start)
    return times


def smp_model(cfg: DictConfig) -> torch.nn.Module:
    """segmentation-models-pytorch's DeepLabV3Plus with this run's encoder at its output stride,
    smp's own defaults otherwise (one 3x3 refinement conv, rates 12/24/36), randomly initialised."""
    import segmentation_models_pytorch as smp

    stride = int(cfg.model.output_stride)
    if stride not in (8, 16):
        raise ConfigError(f"bench.compare=smp needs os=8 or os=16 (smp's DeepLabV3Plus has no output stride {stride})")
    return smp.DeepLabV3Plus(encoder_name=resolve_encoder_name(cfg.model.backbone.name), encoder_weights=None,
                             encoder_output_stride=stride, classes=cfg.data.num_classes,
                             in_channels=cfg.data.get("in_channels", 3))


def model_flop_utilisation(madds_per_image: float, images_per_sec: float, peak_tflops: float) -> float:
    """A forward and a backward pass: about 3 x the forward's multiply-adds, 2 FLOPs each."""
    return 6 * madds_per_image * images_per_sec / (peak_tflops * 1e12)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run(cfg: DictConfig) -> dict:
    resolve_normalisation(cfg)
    if cfg.bench.get("backends"):  # inference on each deployment backend instead (tools/bench_backends.py)
        result = run_backends(cfg)
        Path(cfg.bench.output).write_text(json.dumps(result, indent=2) + "\n")
        return result
    resolve_precision(cfg.trainer)
    if isinstance(cfg.loss.get("class_weights"), str):  # the values do not change the time; counting would
        LOG.info(f"note: loss.class_weights={cfg.loss.class_weights} is timed with equal weights (the values do "
                 "not change the time; train.py counts them)")
        cfg.loss.class_weights = [1.0] * cfg.data.num_classes
    bench = cfg.bench
    if bench.get("compare") not in (None, "smp"):
        raise ConfigError(f"bench.compare={bench.compare} is not allowed; allowed: null, smp")
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.trainer.accelerator != "cpu" else "cpu")
    torch.manual_seed(cfg.seed)
    height, width = bench.input_size
    size = cfg.data.batch_size
    batch = {"image": torch.randint(0, 256, (size, cfg.data.get("in_channels", 3), height, width), dtype=torch.uint8),
             "mask": torch.randint(0, cfg.data.num_classes, (size, height, width), dtype=torch.uint8)}
    model = apply_fast_path(build_network(cfg), cfg.model)
    steps = bench.warmup + bench.iterations
    peer = smp_model(cfg) if bench.get("compare") == "smp" else None
    # smp's model takes sides divisible by 16: it gets the largest such crop (513 -> 512), never more
    peer_batch = {key: value[..., : height // 16 * 16, : width // 16 * 16] for key, value in batch.items()}
    framework, bare, infer, peer_train, peer_infer = [], [], [], [], []
    for _ in range(bench.repeats):  # alternated, so that drifts in the machine hit all alike
        framework += framework_steps(cfg, model, batch, steps, device)[bench.warmup:]
        bare += bare_steps(cfg, model, batch, steps, device)[bench.warmup:]
        if peer is not None:
            peer_train += bare_steps(cfg, peer, peer_batch, steps, device, channels_last=False)[bench.warmup:]
        runners = [inference_runner(cfg, model, batch, device)]
        if peer is not None:
            runners.append(inference_runner(cfg, peer, peer_batch, device, as_trained=True))
        timed = [t[bench.warmup:] for t in time_alternately(runners, steps, device)]
        infer += timed[0]
        peer_infer += timed[1] if peer is not None else []
    framework_s, bare_s, infer_s = (statistics.median(t) for t in (framework, bare, infer))
    madds = count_madds(model, (height, width))["madds"]
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "backbone": cfg.model.backbone.name, "batch_size": size, "input_size": [height, width],
        "precision": str(cfg.trainer.precision), "channels_last": bool(cfg.model.channels_last),
        "compile": bool(cfg.model.compile), "steps_timed": len(framework),
        "train_ms_per_step": 1000 * framework_s, "bare_train_ms_per_step": 1000 * bare_s,
        "train_images_per_sec": size / framework_s, "bare_train_images_per_sec": size / bare_s,
        "overhead_ratio": framework_s / bare_s,
        "infer_ms_per_batch": 1000 * infer_s, "infer_images_per_sec": size / infer_s,
        "eval_fast": bool(cfg.eval.get("fast", True)), "eval_precision": str(cfg.eval.get("precision", "fp32")),
        "madds_per_image": madds, "peak_memory_mb": peak_memory_mb(device),
    }
    if peer is not None:  # the same loss, optimizer, precision and input; smp's model as it comes
        peer_train_s, peer_infer_s = statistics.median(peer_train), statistics.median(peer_infer)
        result.update(smp_input_size=list(peer_batch["image"].shape[-2:]),
                      smp_train_ms_per_step=1000 * peer_train_s, smp_infer_ms_per_batch=1000 * peer_infer_s,
                      train_time_ratio_vs_smp=bare_s / peer_train_s, infer_time_ratio_vs_smp=infer_s / peer_infer_s)
    if bench.get("parts"):
        dtype = autocast_dtype(cfg.trainer.precision)
        images = normaliser(cfg.data)(batch["image"].to(device))
        result["parts"] = time_parts(model, to_channels_last(images) if cfg.model.channels_last else images, dtype,
                                     repeats=bench.iterations, warmup=bench.warmup)
    if bench.loader_batches:
        images, seconds = time_loader(cfg.data, cfg.aug, bench.loader_batches)
        result["loader_images_per_sec"] = images / seconds
    if bench.peak_tflops:
        result["train_mfu"] = model_flop_utilisation(madds, size / framework_s, bench.peak_tflops)
        result["peak_tflops"] = bench.peak_tflops
    Path(bench.output).write_text(json.dumps(result, indent=2) + "\n")
    return result


def report(cfg: DictConfig) -> dict:
    r = run(cfg)
    if "backends" in r:
        print_backends(r)
        print(f"wrote {cfg.bench.output}")
        return r
    print(f"{r['backbone']}  batch {r['batch_size']}  {r['input_size'][0]}x{r['input_size'][1]}  {r['precision']}  "
          f"channels_last={r['channels_last']}  compile={r['compile']}  on {r['device']}  ({r['steps_timed']} steps)")
    print(f"{'':<22}{'ms/step':>10}{'images/s':>10}")
    print(f"{'train (framework)':<22}{r['train_ms_per_step']:>10.1f}{r['train_images_per_sec']:>10.2f}")
    print(f"{'train (bare loop)':<22}{r['bare_train_ms_per_step']:>10.1f}{r['bare_train_images_per_sec']:>10.2f}")
    print(f"{'inference':<22}{r['infer_ms_per_batch']:>10.1f}{r['infer_images_per_sec']:>10.2f}")
    if "smp_train_ms_per_step" in r:
        size = r["batch_size"]
        print(f"{'smp train (bare loop)':<22}{r['smp_train_ms_per_step']:>10.1f}"
              f"{1000 * size / r['smp_train_ms_per_step']:>10.2f}")
        print(f"{'smp inference':<22}{r['smp_infer_ms_per_batch']:>10.1f}"
              f"{1000 * size / r['smp_infer_ms_per_batch']:>10.2f}")
        print(f"time against smp's DeepLabV3Plus (at {r['smp_input_size'][0]}x{r['smp_input_size'][1]}): training "
              f"{r['train_time_ratio_vs_smp']:.3f}x, inference {r['infer_time_ratio_vs_smp']:.3f}x")
    if "parts" in r:
        print_parts(r["parts"], r["bare_train_ms_per_step"])
    if "loader_images_per_sec" in r:
        print(f"{'data loader':<22}{'':>10}{r['loader_images_per_sec']:>10.2f}")
    print(f"overhead framework / bare loop: {r['overhead_ratio']:.4f}   peak memory {r['peak_memory_mb']:.0f} MB"
          + (f"   train MFU {100 * r['train_mfu']:.1f}% of {r['peak_tflops']} TFLOPS" if "train_mfu" in r else ""))
    print(f"wrote {cfg.bench.output}")
    return r


def print_parts(parts: list[dict], step_ms: float) -> None:
    """Each part's forward and backward on its own: its time and multiply-adds, each as a share of
    the top-level parts' sum, and their ratio; then its slowest operators."""
    top = [p for p in parts if "." not in p["part"]]
    seconds, madds = sum(p["seconds"] for p in top), sum(p["madds"] for p in top)
    print(f"\nparts, forward and backward each on its own (sum {1000 * seconds:.1f} ms; the bare step "
          f"{step_ms:.1f} ms adds the loss, the last upsampling and the optimizer)")
    print(f"{'part':<20}{'ms':>9}{'time %':>8}{'GMAdds':>9}{'MAdds %':>9}{'time/MAdds':>11}  "
          "slowest operators (self ms)")
    for p in parts:
        time_share, madds_share = p["seconds"] / seconds, p["madds"] / madds if madds else 0.0
        ratio = f"{time_share / madds_share:.2f}" if madds_share else ""
        ops = ", ".join(f"{o['op'].removeprefix('aten::')} {o['self_ms']:.1f}" for o in p["top_ops"][:3])
        print(f"{p['part']:<20}{1000 * p['seconds']:>9.1f}{100 * time_share:>8.1f}{p['madds'] / 1e9:>9.2f}"
              f"{100 * madds_share:>9.1f}{ratio:>11}  {ops}")
