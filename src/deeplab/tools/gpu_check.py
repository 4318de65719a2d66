"""`python tools/gpu_check.py` (`make gpu-check`): does every GPU path work, and how fast is it?

On the first CUDA device, for ResNet-101 and Xception-65 at OS16 and OS8, 513x513 crops, batch 16:
`steps` training steps through the real LightningModule under a Lightning Trainer in fp32, in
bf16-mixed + channels_last, and in the same plus torch.compile, on one synthetic batch of VOC-sized
images (the loss must fall); images a second, model FLOP utilisation against the card's peak,
peak memory (max_memory_allocated) against tools/memory.py's prediction. Then the bf16 model's
logits against fp32's on the same weights, inference at OS8 with six scales and flips, a smoke
step on every other device, and with 2+ devices one epoch of DDP with SyncBatchNorm over NCCL
whose validation mIoU must equal eval.py's in one process. Writes gpu_check.json and a table; the
last line names the failed checks. Without CUDA it says so in one line and exits 0; `--dry-run`
runs the same code on the CPU at tiny sizes (DDP over gloo, compile with the eager backend)."""

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch

from deeplab import CONF_DIR

ROOT = Path(__file__).resolve().parents[3]  # the checkout: train.py, eval.py
MODES = {  # name: (trainer.precision, channels_last, compile)
    "fp32": ("32-true", False, False),
    "bf16+cl": ("bf16-mixed", True, False),
    "bf16+cl+compile": ("bf16-mixed", True, True),
}
# Dense bf16 matrix TFLOPS by card name (a part of torch.cuda.get_device_name); PEAK_TFLOPS overrides.
PEAK_TFLOPS = {"H200": 989, "H100 PCIe": 756, "H100": 989, "A100": 312, "L40S": 362, "L40": 181, "L4": 121,
               "A10": 125, "RTX 4090": 165, "RTX 3090": 71}
BF16_TOLERANCE = {"relative_l2": 0.05, "argmax_agreement": 0.98}  # bf16 logits against fp32's


def plan(dry_run: bool) -> dict:
    if dry_run:  # the same checks, sized for a 2-core CPU
        return {"size": 65, "batch": 2, "steps": 6, "warmup": 1, "ddp_images": 16, "compile_backend": "eager"}
    return {"size": 513, "batch": 16, "steps": 30, "warmup": 5, "ddp_images": 256, "compile_backend": "inductor"}


def compose(*overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides))


def peak_tflops(name: str) -> float | None:
    import os

    if os.environ.get("PEAK_TFLOPS"):
        return float(os.environ["PEAK_TFLOPS"])
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


class LossRecorder(pl.Callback):
    """The training losses of a run."""

    def __init__(self):
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.values.append(float(outputs["loss"] if isinstance(outputs, dict) else outputs))


def train_check(backbone: str, stride: int, mode: str, sizes: dict, device: torch.device) -> dict:
    """`steps` steps of the real LightningModule on one batch: times, loss, memory."""
    from torch.utils.data import DataLoader

    from deeplab.builders.fast import apply_fast_path
    from deeplab.builders.model import build_model, resolve_normalisation
    from deeplab.inference.complexity import count_madds
    from deeplab.inference.memory import step_memory, total_bytes
    from deeplab.tools.bench import SameBatch, StepTimer, model_flop_utilisation, peak_memory_mb
    from deeplab.training.run import segmentation_module

    precision, channels_last, compiled = MODES[mode]
    cfg = compose(f"backbone={backbone}", f"os={stride}", f"trainer.precision={precision}",
                  f"model.channels_last={channels_last}", f"data.batch_size={sizes['batch']}",
                  f"data.crop_size={sizes['size']}")
    resolve_normalisation(cfg)
    torch.manual_seed(0)
    batch = {"image": torch.randint(0, 256, (sizes["batch"], 3, sizes["size"], sizes["size"]), dtype=torch.uint8),
             "mask": torch.randint(0, cfg.data.num_classes, (sizes["batch"], sizes["size"], sizes["size"]),
                                   dtype=torch.uint8)}
    model = apply_fast_path(build_model(cfg.model, cfg.data.num_classes), cfg.model)
    if compiled:
        model.compile(backend=sizes["compile_backend"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timer, losses = StepTimer(device), LossRecorder()
    trainer = pl.Trainer(accelerator=device.type, devices=[device.index] if device.type == "cuda" else 1,
                         precision=precision, max_steps=sizes["steps"], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         callbacks=[timer, losses])
    trainer.fit(segmentation_module(cfg, model), train_dataloaders=DataLoader(SameBatch(batch, sizes["steps"]),
                                                                            batch_size=None))
    step_s = statistics.median(timer.times[sizes["warmup"]:])
    madds = count_madds(model, (sizes["size"], sizes["size"]))["madds"]
    values = losses.values
    falls = all(math.isfinite(v) for v in values) and statistics.fmean(values[-2:]) < statistics.fmean(values[:2])
    result = {"name": f"train {backbone} OS{stride} {mode}", "ok": falls, "first_loss": values[0],
              "last_loss": values[-1], "images_per_sec": sizes["batch"] / step_s, "ms_per_step": 1000 * step_s,
              "first_step_s": timer.times[0], "madds_per_image": madds}
    if device.type == "cuda":
        from hydra.utils import instantiate

        predicted = total_bytes(step_memory(partial(build_model, cfg.model, cfg.data.num_classes),
                                            (sizes["size"], sizes["size"]), 3, precision,
                                            instantiate(cfg.optim.optimizer)), sizes["batch"])
        result.update(peak_memory_mb=peak_memory_mb(device), predicted_memory_mb=predicted / 2**20,
                      measured_over_predicted=peak_memory_mb(device) * 2**20 / predicted)
        peak = peak_tflops(torch.cuda.get_device_name(device))
        if peak:
            result["mfu"] = model_flop_utilisation(madds, result["images_per_sec"], peak)
    if not falls:
        result["why"] = f"loss did not fall: {values[0]:.4f} -> {values[-1]:.4f}"
    return result


@torch.no_grad()
def bf16_check(backbone: str, sizes: dict, device: torch.device) -> dict:
    """The same weights in eval mode: bf16 autocast logits against fp32's."""
    from deeplab.builders.model import build_model

    cfg = compose(f"backbone={backbone}")
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.data.num_classes).to(device).eval()
    images = torch.randn(2, 3, sizes["size"], sizes["size"], device=device)
    exact = model(images).float()
    with torch.autocast(device.type, dtype=torch.bfloat16):
        fast = model(images).float()
    relative = float((fast - exact).norm() / exact.norm())
    agreement = float((fast.argmax(1) == exact.argmax(1)).float().mean())
    ok = relative <= BF16_TOLERANCE["relative_l2"] and agreement >= BF16_TOLERANCE["argmax_agreement"]
    return {"name": f"bf16 logits {backbone}", "ok": ok, "relative_l2": relative, "argmax_agreement": agreement,
            "detail": f"relative L2 {relative:.4f}, argmax agreement {agreement:.4f}",
            **({} if ok else {"why": f"relative L2 {relative:.4f}, argmax agreement {agreement:.4f} "
                                    f"(allowed: <= {BF16_TOLERANCE['relative_l2']}, >= "
                                    f"{BF16_TOLERANCE['argmax_agreement']})"})}


@torch.no_grad()
def eval_check(backbone: str, sizes: dict, device: torch.device) -> dict:
    """Inference as the paper's best setting: OS16 weights re-dilated to OS8, six scales, flipped."""
    from deeplab.builders.model import build_model
    from deeplab.inference.multiscale import predict_probs

    cfg = compose(f"backbone={backbone}", "eval=paper")
    model = build_model(cfg.model, cfg.data.num_classes).to(device).eval()
    model.set_output_stride(cfg.eval.output_stride)
    image = torch.randn(1, 3, sizes["size"], sizes["size"], device=device)
    start = time.perf_counter()
    probs = predict_probs(model, image, scales=list(cfg.eval.scales), flip=cfg.eval.flip)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    ok = tuple(probs.shape[2:]) == (sizes["size"],) * 2 and bool(torch.isfinite(probs).all())
    return {"name": f"eval {backbone} OS8 6 scales + flip", "ok": ok, "seconds_per_image": seconds,
            "detail": f"{seconds:.2f} s an image"}


def ddp_check(sizes: dict, out: Path, dry_run: bool) -> dict:
    """One epoch of train.py on 2 processes (NCCL with SyncBatchNorm; gloo on the CPU), then
    eval.py on its checkpoint in one process: the same mIoU."""
    run_dir, data = out / "ddp_run", out / "ddp_data"
    device = ["trainer.accelerator=cpu", "trainer.sync_batchnorm=false", "model.backbone.name=tu-test_resnet"] \
        if dry_run else ["trainer.accelerator=gpu", "trainer.sync_batchnorm=true"]
    train = subprocess.run([sys.executable, str(ROOT / "train.py"), "trainer=ddp", "trainer.devices=2", *device,
                            "logger=none", "trainer.max_epochs=1", "overwrite=true",
                            f"data.prepare.num_train={sizes['ddp_images']}",
                            "data.prepare.num_val=16", "data.num_workers=0", f"paths.data_dir={data}",
                            f"hydra.run.dir={run_dir}", "trainer.enable_progress_bar=false"],
                           capture_output=True, text=True, cwd=ROOT, timeout=900)
    if train.returncode != 0:
        return {"name": "ddp 2 processes", "ok": False, "why": (train.stderr.strip().splitlines() or ["?"])[-1]}
    summary = json.loads((run_dir / "summary.json").read_text())
    evaluation = subprocess.run([sys.executable, str(ROOT / "eval.py"), f"ckpt_path={summary['best_ckpt']}",
                                 f"hydra.run.dir={out / 'ddp_eval'}", f"paths.data_dir={data}"],
                                capture_output=True, text=True, cwd=ROOT, timeout=900)
    if evaluation.returncode != 0:
        return {"name": "ddp 2 processes", "ok": False, "why": (evaluation.stderr.strip().splitlines() or ["?"])[-1]}
    single = json.loads((out / "ddp_eval" / "metrics.json").read_text())["mIoU"]
    ok = abs(single - summary["val/mIoU_best"]) <= 1e-6
    return {"name": "ddp 2 processes", "ok": ok, "val_miou": summary["val/mIoU_best"], "eval_miou": single,
            "detail": f"validation mIoU {summary['val/mIoU_best']:.6f}, eval.py {single:.6f}",
            **({} if ok else {"why": f"DDP validation {summary['val/mIoU_best']:.6f} != eval.py {single:.6f}"})}


def run(dry_run: bool, out: Path) -> dict:
    sizes = plan(dry_run)
    devices = [torch.device("cpu")] if dry_run else [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    names = ["cpu (dry run)"] if dry_run else [torch.cuda.get_device_name(d) for d in devices]
    checks, first = [], devices[0]
    for backbone in ("resnet101", "xception65"):
        for stride in (16, 8):
            for mode in MODES:
                checks.append(_guarded(train_check, backbone, stride, mode, sizes, first))
        checks.append(_guarded(bf16_check, backbone, sizes, first))
        checks.append(_guarded(eval_check, backbone, sizes, first))
    for device in devices[1:]:  # the others: that each one trains at all
        smoke = {**sizes, "steps": 3, "warmup": 1}
        checks.append({**_guarded(train_check, "resnet101", 16, "bf16+cl", smoke, device), "device": str(device)})
    if dry_run or len(devices) >= 2:
        checks.append(_guarded(ddp_check, sizes, out, dry_run))
    failed = [c["name"] for c in checks if not c["ok"]]
    result = {"devices": names, "dry_run": dry_run, "sizes": sizes, "checks": checks, "failed": failed}
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _guarded(check, *args) -> dict:
    """A check that raises fails with its reason in one line; the others still run."""
    try:
        return check(*args)
    except Exception as err:  # noqa: BLE001  (a self-check reports every failure, it does not stop)
        labels = " ".join(str(a) for a in args[:3] if isinstance(a, str | int))
        name = f"{check.__name__.removesuffix('_check')} {labels}"
        return {"name": name, "ok": False, "why": f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"}


def print_table(result: dict) -> None:
    print(f"gpu_check on {', '.join(result['devices'])}" + (" (dry run: tiny sizes)" if result["dry_run"] else ""))
    print(f"{'check':<38}{'ok':>4}{'img/s':>9}{'MFU':>7}{'peak MiB':>10}{'meas/pred':>10}")
    for c in result["checks"]:
        figures = [f"{c['images_per_sec']:>9.1f}" if "images_per_sec" in c else f"{'':>9}",
                   f"{100 * c['mfu']:>6.1f}%" if "mfu" in c else f"{'':>7}",
                   f"{c['peak_memory_mb']:>10.0f}" if "peak_memory_mb" in c else f"{'':>10}",
                   f"{c['measured_over_predicted']:>10.2f}" if "measured_over_predicted" in c else f"{'':>10}"]
        print(f"{c['name']:<38}{'yes' if c['ok'] else 'NO':>4}" + "".join(figures)
              + (f"  {c['why']}" if not c["ok"] else f"  {c['detail']}" if "detail" in c else ""))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tools/gpu_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the same checks on the CPU at tiny sizes")
    parser.add_argument("--out", default="gpu_check", help="folder for gpu_check.json and the DDP run")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible, nothing to check (tools/gpu_check.py --dry-run runs the same "
              "checks on the CPU)")
        return 0
    out = Path(args.out).resolve()  # absolute once: the DDP check's subprocesses run in the checkout
    result = run(args.dry_run, out)
    print_table(result)
    print(f"wrote {out / 'gpu_check.json'}")
    if result["failed"]:
        print(f"gpu_check: {len(result['failed'])} of {len(result['checks'])} checks failed: "
              f"{', '.join(result['failed'])}")
        return 1
    print(f"gpu_check: all {len(result['checks'])} checks passed")
    return 0
