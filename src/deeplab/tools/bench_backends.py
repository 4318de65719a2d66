"""`tools/bench.py bench.backends=[pytorch,onnx,onnx-int8,openvino,openvino-int8,torchscript]`:
eval.py's inference path (grid padding, eval.scales, eval.flip, eval.mode) timed on each backend
on the same input, on the CPU, the backends taking turns in blocks of calls; with
`bench.accuracy=true` each one's mIoU on the val split too. The graphs are exported (and the INT8
ones calibrated) as tools/export.py does, from `ckpt_path`'s weights, or from the composed model's
own where none is given."""

import statistics
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from deeplab.builders.checkpoint import model_from_checkpoint
from deeplab.builders.data import prepare_data
from deeplab.builders.model import build_network, inference_settings
from deeplab.deploy import int8
from deeplab.deploy.backends import load_exported
from deeplab.errors import ConfigError
from deeplab.inference.multiscale import predict_probs
from deeplab.inference.pixels import normaliser
from deeplab.inference.prepare import prepare_for_inference
from deeplab.inference.task import task_of
from deeplab.tools.export import NEEDS, build_folder

BACKENDS = ("pytorch", *NEEDS)


def run_backends(cfg: DictConfig) -> dict:
    bench, names = cfg.bench, [str(name) for name in cfg.bench.backends]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(f"bench.backends=[{','.join(names)}] is not allowed; allowed: a list of distinct names from "
                          f"{', '.join(BACKENDS)}")
    for name in names:
        for module in NEEDS.get(name, ()):
            int8.require(module, name)
    if cfg.get("ckpt_path"):
        model, config = model_from_checkpoint(cfg.ckpt_path)
    else:
        model, config = build_network(cfg).eval(), cfg
    output_stride = cfg.eval.output_stride or config.model.output_stride
    model.set_output_stride(output_stride)
    task, data = task_of(config), config.data
    prepare_data(data)
    pytorch = prepare_for_inference(model, cfg.eval.get("fast", True))  # eval.py's model, fp32 on the CPU
    height, width = bench.input_size
    pixels = torch.randint(0, 256, (cfg.data.val_batch_size, data.get("in_channels", 3), height, width),
                           dtype=torch.uint8, generator=torch.Generator().manual_seed(cfg.seed))
    images = normaliser(data)(pixels)
    settings = inference_settings(cfg.eval, data.crop_size, task)
    result = {"device": "cpu", "backbone": config.model.backbone.name, "batch_size": int(pixels.shape[0]),
              "input_size": [height, width], "output_stride": output_stride, "weights": cfg.get("ckpt_path"),
              "threads": torch.get_num_threads(), "backends": {}}
    with tempfile.TemporaryDirectory() as scratch:
        models, built = {}, {}
        for name in names:
            if name == "pytorch":
                models[name] = pytorch
                continue
            export = OmegaConf.create({"format": name, "opset": 18, "example_size": [height, width], "keep_fp32": [],
                                       "fold": cfg.eval.get("fast", True),
                                       "calibration_images": bench.calibration_images})
            built[name] = build_folder(export, model, config, output_stride, Path(scratch) / name)
            models[name] = load_exported(Path(scratch) / name)[0]
        seconds = {name: [] for name in names}
        with torch.no_grad():
            for _ in range(bench.repeats):  # each backend a block in turn: runtimes whose idle threads spin
                for name, runner in models.items():  # (onnxruntime, OpenVINO) would slow the next call made
                    for step in range(bench.warmup + bench.iterations):
                        began = time.perf_counter()
                        predict_probs(runner, images, **settings)
                        if step >= bench.warmup:
                            seconds[name].append(time.perf_counter() - began)
        checked = list(int8.split_images(data, data.val_split, bench.accuracy_images, output_stride, seed=1)) \
            if bench.get("accuracy") else []
        for name in names:
            median = statistics.median(seconds[name])
            entry = {"ms_per_batch": 1000 * median, "images_per_sec": pixels.shape[0] / median,
                     **{key: built[name][key] for key in ("calibration_images", "bytes") if key in built.get(name, {})}}
            if checked:
                compared = int8.compare(pytorch, models[name], checked, data.num_classes, data.ignore_index, task)
                entry.update({"mIoU": compared.get("mIoU_converted"), "agreement_with_pytorch": compared["agreement"],
                              "accuracy_images": compared["images"]})
            result["backends"][name] = entry
    if "pytorch" in names:
        base = result["backends"]["pytorch"]["images_per_sec"]
        for entry in result["backends"].values():
            entry["speed_vs_pytorch"] = entry["images_per_sec"] / base
    return result


def print_backends(result: dict) -> None:
    print(f"{result['backbone']}  batch {result['batch_size']}  {result['input_size'][0]}x{result['input_size'][1]}  "
          f"output stride {result['output_stride']}  on the CPU ({result['threads']} threads)")
    print(f"{'backend':<16}{'ms/batch':>10}{'images/s':>10}{'vs pytorch':>12}{'mIoU':>9}")
    for name, entry in result["backends"].items():
        ratio = f"{entry['speed_vs_pytorch']:.2f}x" if "speed_vs_pytorch" in entry else ""
        miou = f"{100 * entry['mIoU']:.2f}" if entry.get("mIoU") is not None else ""
        print(f"{name:<16}{entry['ms_per_batch']:>10.1f}{entry['images_per_sec']:>10.2f}{ratio:>12}{miou:>9}")
