"""tools/memory.py: the memory a training step of the composed config holds, and the largest
data.batch_size that fits memory.budget_gb, counted on fake tensors (deeplab.inference.memory)."""

import copy
import json

from hydra.utils import instantiate

from deeplab.builders.model import build_model
from deeplab.errors import ConfigError
from deeplab.inference.memory import PRECISIONS, largest_batch, step_memory, total_bytes
from deeplab.inference.task import task_of
from deeplab.schema import validate_memory

MIB, GIB = 2**20, 2**30


def report(cfg) -> dict:
    """Counts one step (per process under DDP: data.batch_size is per process), prints a table and,
    last, one JSON line."""
    validate_memory(cfg)
    precision = str(cfg.trainer.precision)
    if precision == "auto":  # the target device is elsewhere: predict for one with native bf16, as GPUs are
        precision = "bf16-mixed"
        print("trainer.precision=auto: counted as bf16-mixed, what it picks on a device with native bf16 "
              "(give trainer.precision=32-true for others)")
    if precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision={precision} is not allowed in tools/memory.py; allowed: "
                          f"{', '.join(PRECISIONS)}")
    crop = cfg.data.crop_size
    size = (int(crop), int(crop)) if isinstance(crop, int) else (int(crop[0]), int(crop[-1]))
    shapes = copy.deepcopy(cfg.model)
    shapes.backbone.weights = None  # the same tensors; nothing to load
    bands = cfg.data.get("in_channels", 3)

    def build():
        model = build_model(shapes, cfg.data.num_classes, bands, task_of(cfg))
        if cfg.model.get("activation_checkpointing"):
            model.set_activation_checkpointing()
        return model

    # Every parameter trainable: the largest stage of any fine-tuning schedule.
    memory = step_memory(build, size, bands, precision, instantiate(cfg.optim.optimizer))
    batch, budget = int(cfg.data.batch_size), float(cfg.memory.budget_gb)
    result = {**memory, "batch_size": batch, "total_bytes": total_bytes(memory, batch),
              "budget_gb": budget, "largest_batch_size": largest_batch(memory, budget * GIB),
              "backbone": cfg.model.backbone.name, "output_stride": cfg.model.output_stride, "crop": list(size),
              "precision": precision, "activation_checkpointing": bool(cfg.model.get("activation_checkpointing"))}
    decoder = "deeplabv3plus" if cfg.model.decoder is not None else "deeplabv3"
    optimizer = str(cfg.optim.optimizer._target_).rsplit(".", 1)[-1]
    print(f"{cfg.model.backbone.name}  {decoder}  OS {cfg.model.output_stride}  crop {size[0]}x{size[1]}  "
          f"{precision}  activation checkpointing {'on' if result['activation_checkpointing'] else 'off'}")
    rows = [("parameters", memory["params"]), ("gradients", memory["grads"]),
            (f"optimizer state ({optimizer})", memory["optimizer"]),
            ("activations, fixed", memory["activations_fixed"]),
            ("activations, per image", memory["activations_per_image"])]
    for name, value in rows:
        print(f"{name:<32}{value / MIB:>10.0f} MiB")
    print(f"{f'total at data.batch_size={batch}':<32}{result['total_bytes'] / GIB:>10.2f} GiB")
    print(f"largest data.batch_size within memory.budget_gb={budget:g}: {result['largest_batch_size']}")
    print(json.dumps(result))
    return result
