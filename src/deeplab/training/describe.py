"""The start-up description of a run: what will train, on what, with which settings."""

from omegaconf import DictConfig


def _short(values) -> str:
    return "encoder's" if values is None else "[" + ", ".join(f"{v:.3g}" for v in values) + "]"


def describe(cfg: DictConfig, choices: dict | None = None) -> str:
    """A one-screen summary of what will run."""
    model, data, optim, trainer = cfg.model, cfg.data, cfg.optim, cfg.trainer
    lines = []
    if choices:
        picked = [f"{g}={choices[g]}" for g in ("data", "recipe", "backbone", "decoder", "aug", "optim", "loss",
                                                "task", "trainer", "logger", "experiment", "debug") if choices.get(g)]
        lines.append("groups   " + " ".join(picked))
    aspp = model.aspp
    lines.append(f"model    {model.backbone.name} (weights: {model.backbone.weights or 'random init'})  "
                 f"OS {model.output_stride}  "
                 f"ASPP {aspp.channels}ch rates {list(aspp.rates)} separable={aspp.separable}{_between(aspp)} "
                 f"pooling={aspp.image_pooling} dropout={aspp.dropout}"
                 + (" then a 3x3 conv" if aspp.get("post_conv") else ""))
    if model.decoder is None:
        lines.append("decoder  none (DeepLabV3: 1x1 logits on ASPP, bilinear upsampling)")
    else:
        dec = model.decoder
        lines.append(f"decoder  DeepLabV3+: low-level {dec.low_level_channels}ch, {dec.num_convs} x 3x3 conv "
                     f"{dec.channels}ch, separable={dec.separable}{_between(dec)}")
    task = cfg.get("task") or {"name": "multiclass"}
    kind = f"{data.num_classes} classes" if task["name"] == "multiclass" else \
        f"{data.num_classes} {'classes' if task['name'] == 'binary' else 'labels'} ({task['name']}: sigmoid, " \
        f"threshold {task['threshold']})"
    lines.append(f"data     {data.root}  {kind}  crop {data.crop_size}  batch {data.batch_size}"
                 f"  workers {data.num_workers}  splits {data.train_split}/{data.val_split}")
    lines.append(f"         normalise mean {_short(data.mean)} std {_short(data.std)}")
    momentum = f" momentum {optim.momentum}" if "momentum" in optim else ""
    lines.append(f"optim    {optim.optimizer._target_.rsplit('.', 1)[-1]} lr {optim.lr}{momentum} weight_decay "
                 f"{optim.weight_decay} poly {optim.poly_power}  loss {cfg.loss._target_.rsplit('.', 1)[-1]}")
    lines.append(f"trainer  max_epochs {trainer.max_epochs} max_steps {trainer.max_steps} precision {trainer.precision}"
                 f"  accelerator {trainer.accelerator} x{trainer.devices}  seed {cfg.seed}")
    lines.append(f"eval     output_stride {cfg.eval.output_stride or model.output_stride}  scales "
                 f"{list(cfg.eval.scales)}  flip {cfg.eval.flip}  mode {cfg.eval.mode}")
    lines.append(f"output   {cfg.paths.output_dir}")
    return "\n".join(lines)


def _between(part) -> str:
    """Said when a separable conv has no BN + ReLU between its depthwise and pointwise convs."""
    plain = part.get("separable") and not part.get("depthwise_bn_relu", True)
    return " (no BN + ReLU after depthwise)" if plain else ""
