"""The config's value rules, declared once: a pydantic model of each section the code reads, each
field with its type and its range or choices, and the rules between fields as model validators.
Keys without rules pass through (`extra="allow"`): the composed YAML stays the config, this only
checks it. A broken rule is one ConfigError line, `KEY=VALUE is not allowed; allowed: ...`, its
words generated from the field's type and constraints (deeplab.allowed), before anything is built.
Plain OmegaConf, no Hydra."""

from typing import Annotated, Any, Literal

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from deeplab.allowed import allowed
from deeplab.data.class_pixels import WEIGHTINGS
from deeplab.data.folder import MASK_FORMATS
from deeplab.errors import ConfigError, required
from deeplab.inference.boundary import BOUNDARIES
from deeplab.inference.multiscale import MODES as EVAL_MODES
from deeplab.inference.task import TASKS
from deeplab.model.encoder import OUTPUT_STRIDES
from deeplab.model.encoder import WEIGHTS as BACKBONE_WEIGHTS

MAX_CROP = 4096  # past any benchmark's image side; a bigger crop is all padding and a typo's memory bill

OutputStride = Literal[OUTPUT_STRIDES]
Number = int | FiniteFloat  # inf and nan pass every range check and then break training
Side = Annotated[int, Field(ge=16, le=MAX_CROP)]
Sides = Annotated[list[Side], Field(min_length=1, max_length=2)]  # [side] or [height, width]
HeightWidth = Annotated[list[Side], Field(min_length=2, max_length=2)]
Byte = Annotated[int, Field(ge=0, le=255)]
RGB = Annotated[list[Byte], Field(min_length=3, max_length=3)]
# A number of batches, or a fraction of them (Lightning reads a float as a fraction)
Batches = Annotated[int, Field(ge=1)] | Annotated[FiniteFloat, Field(gt=0, le=1)]


def rule(default: Any = ..., why: str | None = None, **constraints) -> Any:
    """A field: `default=None` lets the key be absent (its value lives in the YAML, never here);
    `why` is said after the allowed values (what null or 0 means, the reason for a bound)."""
    return Field(default, description=why, **constraints)


def refuse(key: str, value, allowed: str) -> None:
    """A broken rule between fields, reported as a field's own would be."""
    raise PydanticCustomError("not_allowed", "{key}", {"key": key, "value": value, "allowed": allowed})


class Section(BaseModel):
    # strict: no "8" for 8, no true for 1; extra keys are the config's own business
    model_config = ConfigDict(strict=True, extra="allow")


class Backbone(Section):
    weights: Literal[BACKBONE_WEIGHTS[1:]] | None = rule()


class ASPP(Section):
    rates: list[Annotated[int, Field(gt=0)]] = rule(why="train.yaml derives the paper's from the output stride",
                                                    min_length=1)
    channels: int = rule(gt=0)
    dropout: Number = rule(ge=0, lt=1)
    depthwise_bn_relu: bool = rule(None)
    post_conv: bool = rule(None)


class Decoder(Section):
    # The ranges of the paper's decoder ablations (Tables 1 and 2).
    low_level_channels: int = rule(ge=8, le=64)
    num_convs: Literal[1, 2, 3] = rule()
    channels: int = rule(gt=0)
    depthwise_bn_relu: bool = rule(None)


class Model(Section):
    output_stride: OutputStride = rule()
    backbone: Backbone
    channels_last: bool = rule(None)
    compile: bool = rule(None)
    activation_checkpointing: bool = rule(None)
    init_from: str | None = rule(None, "the path of a run directory, a checkpoint or a state_dict file")
    aspp: ASPP
    decoder: Decoder | None = None


class Data(Section):
    num_classes: int = rule(why="task=binary counts background and the foreground: 2", ge=2)
    boundary: Literal[BOUNDARIES] = rule("labels")
    class_names: list[str] = rule()
    ignore_index: int = rule(why="outside the class indices")
    crop_size: Side | Sides = rule(why="[height, width] as a list")
    image_size: Side | Sides | None = rule(None, "null: images as stored; [height, width] as a list")
    batch_size: int = rule(why="image pooling's batch norm needs two images per step", ge=2)
    num_workers: int = rule(ge=0)
    prefetch_factor: int = rule(None, ge=1)
    colors: list[RGB] | None = rule(None, "null: the VOC colour map; else one [r, g, b] a class")
    mask_format: Literal[MASK_FORMATS] = rule(None)
    void_color: RGB | None = rule(None)
    in_channels: int = rule(None, "3 for RGB", ge=1)
    num_folds: int | None = rule(None, ge=2)
    fold: int | None = rule(None, "null: the dataset's own splits; else a fold index < data.num_folds", ge=0)
    max_pixel_value: Number = rule(None, "255 for 8-bit images", gt=0)
    mean: list[Number] | None = rule(why="null: the encoder's pretrained statistics; else one a channel")
    std: list[Annotated[Number, Field(gt=0)]] | None = rule(
        why="null: the encoder's pretrained statistics; else one a channel")
    label_map: dict[Byte, int | None] | None = rule(None, "stored mask value: class id, ignore_index, or null for void")

    @model_validator(mode="after")
    def _classes(self):
        n = self.num_classes
        if len(self.class_names) != n:
            refuse("data.class_names", self.class_names, f"exactly data.num_classes={n} names")
        if 0 <= self.ignore_index < n:
            refuse("data.ignore_index", self.ignore_index, f"an integer outside 0..{n - 1}")
        colors = self.colors
        if self.fold is not None and (self.num_folds is None or self.fold >= self.num_folds):
            refuse("data.fold", self.fold, "null, or 0 .. data.num_folds - 1 with data.num_folds set" +
                   (f" (0 .. {self.num_folds - 1})" if self.num_folds else ""))
        if self.label_map:
            wrong = {k: v for k, v in self.label_map.items() if v is not None and v != self.ignore_index
                     and not 0 <= v < n}
            if wrong:
                refuse("data.label_map", self.label_map, f"mask values mapped to a class id 0..{n - 1}, to "
                       f"ignore_index={self.ignore_index} or to null (void)")
        bands = self.in_channels
        for key in ("mean", "std"):
            value = getattr(self, key)
            if value is None and bands != 3:
                refuse(f"data.{key}", value, f"{bands} numbers with data.in_channels={bands} (the encoders' "
                       "pretrained statistics are for RGB)")
            if value is not None and len(value) != bands:
                refuse(f"data.{key}", value, f"null or {bands} numbers, one a channel (data.in_channels={bands})")
        if colors is not None and len(colors) != n:
            refuse("data.colors", colors, f"null (the VOC colour map) or {n} [r, g, b] triples of 0..255")
        if self.mask_format == "color" and colors is not None:  # each colour of a mask must say one class
            if len({tuple(c) for c in colors}) < len(colors):
                refuse("data.colors", colors, "distinct colours with data.mask_format=color (a colour is one class)")
            if self.void_color is not None and self.void_color in colors:
                refuse("data.void_color", self.void_color, "a colour that is no class's in data.colors")
        return self


class Task(Section):
    name: Literal[TASKS] = rule()
    threshold: Annotated[Number, Field(gt=0, lt=1)] | None = rule(None, "null: multiclass, which takes the argmax")


class Loss(Section):
    """The keys of loss=ce, focal, bce and bce_dice (loss=dice has none of them)."""

    class_weights: Literal[WEIGHTINGS] | list[Annotated[Number, Field(ge=0)]] | None = rule(
        None, "a list: one weight a class")
    top_k_percent_pixels: Number = rule(None, "1.0: every pixel counts", gt=0, le=1)
    hard_example_mining_step: int = rule(None, "0: no warm-up", ge=0)
    pos_weight: Literal["balanced"] | Annotated[Number, Field(gt=0)] | None = rule(None, "null: 1")
    dice_weight: Number = rule(None, ge=0)


class Optim(Section):
    lr: Number = rule(gt=0)
    momentum: Number | None = rule(None, ge=0, lt=1)
    weight_decay: Number = rule(ge=0)
    poly_power: Number = rule(ge=0)


def _sides(value) -> list:
    """An int or a one- or two-item list as [height, width]."""
    sides = value if isinstance(value, list) else [value]
    return sides * 2 if len(sides) == 1 else sides


class Trimap(Section):
    widths: list[Annotated[int, Field(ge=1)]] = rule(None, "band widths in pixels")
    boundary: Literal[BOUNDARIES] | None = rule(None, "null: data.boundary")


class BoundaryIoU(Section):
    dilation_ratio: Number = rule(None, gt=0, le=1)


class Eval(Section):
    output_stride: OutputStride | None = rule()
    scales: list[Annotated[Number, Field(gt=0)]] = rule(min_length=1)
    flip: bool = rule()
    mode: Literal[EVAL_MODES] = rule()
    window: Annotated[int, Field(ge=16)] | Annotated[list[Annotated[int, Field(ge=16)]],
                                                      Field(min_length=1, max_length=2)] | None = rule(
        why="null: data.crop_size; [height, width] as a list")
    stride: Annotated[int, Field(ge=1)] | Annotated[list[Annotated[int, Field(ge=1)]],
                                                     Field(min_length=1, max_length=2)] | None = rule(
        why="null: two thirds of the window; [height, width] as a list")

    fast: bool = rule(None)
    threshold: Annotated[Number, Field(gt=0, lt=1)] | None = rule(None, "null: the run's task.threshold")
    threshold_sweep: bool = rule(None)
    precision: Literal["fp32", "bf16", "auto"] = rule(None)
    trimap: Trimap | None = None
    boundary_iou: BoundaryIoU | None = None
    bootstrap: int = rule(None, "0: no interval", ge=0)
    num_worst: int = rule(None, "0: no gallery", ge=0)

    @model_validator(mode="after")
    def _stride_within_window(self):
        if self.window is not None and self.stride is not None and any(
                s > w for s, w in zip(_sides(self.stride), _sides(self.window), strict=True)):
            refuse("eval.stride", self.stride, f"at most eval.window={self.window}, or windows leave gaps")
        return self


class Trainer(Section):
    max_steps: Literal[-1] | Annotated[int, Field(ge=1)] = rule(why="-1: no step limit")
    max_epochs: Literal[-1] | Annotated[int, Field(ge=1)] | None = rule(None, "-1 or null: no epoch limit")
    limit_train_batches: Batches | None = rule(None, "batches, or a fraction of them")
    limit_val_batches: Batches | None = rule(None, "batches, or a fraction of them")
    gradient_clip_val: Number | None = rule(None, "null: off", gt=0)
    val_check_interval: Batches | None = rule(None, "batches, or a fraction of an epoch")
    gradient_clip_algorithm: Literal["norm", "value"] = rule(None)
    accelerator: str | None = None
    sync_batchnorm: bool | None = None

    @model_validator(mode="after")
    def _run_length(self):
        if self.max_epochs in (None, -1) and self.max_steps == -1:
            refuse("trainer.max_epochs", self.max_epochs, "an integer >= 1 while trainer.max_steps=-1 (a run needs "
                   "one limit)")
        return self


class LastCheckpoint(Section):
    every_n_train_steps: int = rule(why="last.ckpt is also written at each epoch's end", ge=1)


class Callbacks(Section):
    last_checkpoint: LastCheckpoint


class Aug(Section):
    """The aug group's scale, flip and photometric keys (each option has some of them, aug=none none)."""

    scale_min: Number | None = rule(None, gt=0)
    scale_max: Number | None = rule(None, gt=0)
    scale_step: Number | None = rule(None, "0: aug.scale_min only", ge=0)
    flip: Number | None = rule(None, "a probability", ge=0, le=1)
    brightness: Number = rule(None, ge=0)
    contrast: Number = rule(None, ge=0)
    saturation: Number = rule(None, ge=0)
    hue: Number = rule(None, ge=0, le=0.5)

    @model_validator(mode="after")
    def _scale_range(self):
        # an empty range would draw no scale at all and train at scale 1 without a word
        if self.scale_min is not None and self.scale_max is not None and self.scale_min > self.scale_max:
            refuse("aug.scale_max", self.scale_max, f"a number >= aug.scale_min={self.scale_min}")
        return self


class Check(Section):
    deviations: bool = rule(None)
    classes: bool = rule(None)


class Sweep(Section):
    prune: Literal["median"] | None = rule(None, "null: off")
    prune_after: Number = rule(None, "epochs", ge=0)


class Dashboard(Section):
    every_n_epochs: int = rule(None, ge=1)
    num_images: int = rule(None, ge=0)
    num_worst: int = rule(None, "0: off", ge=0)
    aug_preview: bool = rule(None)


class Stride(Section):
    """`os`, checked before the rest: the ASPP rates are derived from it when the rest is read."""

    os: OutputStride = rule(None)


class CheckpointStride(Section):
    """`os` of the commands that take the model from a checkpoint (eval.py, predict.py, export)."""

    os: OutputStride | None = rule(None, why="null: the checkpoint's eval or training output stride")


class TrainConfig(Section):
    model: Model
    data: Data
    seed: int = rule(ge=0, lt=2**32)
    target_miou: Number | None = rule(None, "null: off", ge=0, le=1)
    trainer: Trainer  # how long training runs
    callbacks: Callbacks  # and how often it saves
    optim: Optim
    eval: Eval
    loss: Loss
    task: Task | None = None
    check: Check | None = None
    aug: Aug | None = None
    sweep: Sweep | None = None
    dashboard: Dashboard | None = None

    @model_validator(mode="after")
    def _colour_on_bands(self):
        bands = self.data.in_channels
        if bands != 3 and self.aug is not None:
            for key in ("brightness", "contrast", "saturation", "hue"):
                if getattr(self.aug, key):
                    refuse(f"aug.{key}", getattr(self.aug, key), f"0 with data.in_channels={bands} (colour jitter "
                           "works on RGB; the geometric augmentation works on any number of bands)")
        return self

    @model_validator(mode="after")
    def _task(self):
        task, data = self.task.name if self.task else "multiclass", self.data
        n = data.num_classes
        if task == "binary" and n != 2:
            refuse("data.num_classes", n, f"2 with task=binary (background and one foreground, one output channel); "
                   f"{n} classes are task=multiclass, {n} overlapping labels task=multilabel")
        if task == "multiclass" and (self.eval.threshold is not None or self.eval.threshold_sweep):
            key = "eval.threshold" if self.eval.threshold is not None else "eval.threshold_sweep"
            refuse(key, getattr(self.eval, key.split(".")[1]), "null with task=multiclass (a pixel takes its most "
                   "probable class; thresholds are task=binary's and multilabel's)" if key == "eval.threshold" else
                   "false with task=multiclass (thresholds are task=binary's and multilabel's)")
        if task != "multiclass" and self.task.threshold is None:
            refuse("task.threshold", None, f"a number between 0 and 1 (exclusive) with task={task}")
        if (data.mask_format in ("labels", "bands")) != (task == "multilabel"):
            refuse("data.mask_format", data.mask_format, "labels or bands with task=multilabel (a mask folder a "
                   "label, or a band a label), index or color with the other tasks" if task == "multilabel" else
                   "index or color (labels and bands, a mask a label, are task=multilabel's)")
        if task != "multiclass" and self.loss.class_weights is not None:
            refuse("loss.class_weights", self.loss.class_weights, f"null with task={task} (class weights are "
                   "task=multiclass's; loss=bce and bce_dice weigh the foreground with loss.pos_weight)")
        if task == "multilabel" and self.loss.pos_weight == "balanced":
            refuse("loss.pos_weight", "balanced", "a number or null with task=multilabel (balanced is counted for "
                   "task=binary)")
        if task == "multilabel" and self.eval.trimap is not None and self.eval.trimap.widths:
            refuse("eval.trimap.widths", self.eval.trimap.widths, "[] with task=multilabel (the bands follow the "
                   "boundaries of one class map)")
        if task == "multilabel" and self.dashboard is not None and self.dashboard.num_worst:
            refuse("dashboard.num_worst", self.dashboard.num_worst, "0 with task=multilabel")
        return self

    @model_validator(mode="after")
    def _class_weights(self):
        weights, n = self.loss.class_weights, self.data.num_classes
        if isinstance(weights, list) and len(weights) != n:
            refuse("loss.class_weights", weights, f"exactly data.num_classes={n} numbers, or a weighting method")
        return self

    @model_validator(mode="after")
    def _sync_batchnorm(self):
        trainer = self.trainer
        on_cpu = trainer.accelerator == "cpu" or trainer.accelerator == "auto" and not torch.cuda.is_available()
        if trainer.sync_batchnorm and on_cpu:
            raise PydanticCustomError("needs_gpu", "trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm "
                                      "runs on CUDA only); set trainer.sync_batchnorm=false to train with CPU "
                                      "processes")
        return self


class Export(Section):
    """tools/export.py's own keys (deeplab/conf/export.yaml)."""

    output_stride: OutputStride | None = rule(why="null: the checkpoint's eval or training output stride")
    format: Literal["onnx", "onnx-int8", "openvino", "openvino-int8", "torchscript", "pretrained"] = rule(None)
    calibration_images: int = rule(None, ge=1)
    check_split: str | None = rule(None)
    check_images: int = rule(None, ge=1)
    keep_fp32: Literal["auto"] | list[str] = rule(None, why="auto, or a list of ONNX node names")
    example_size: HeightWidth = rule(why="[height, width]")
    check_size: HeightWidth = rule(why="[height, width]")
    tolerance: Number = rule(gt=0)
    fold: bool = rule(None)


class PredictOptions(Section):
    probabilities: bool = rule()


class Predict(Section):
    """predict.py's own keys (deeplab/conf/predict.yaml)."""

    overlay_alpha: Number = rule(ge=0, le=1)
    predict: PredictOptions
    num_workers: Literal["auto"] | Annotated[int, Field(ge=0)] = rule(
        why="auto: 2 with a GPU, 0 on the CPU; 0: images are read in the main process")


class ComplexityOptions(Section):
    by_module: bool = rule()


class ComplexityTool(Section):
    """tools/complexity.py's own keys (deeplab/conf/complexity.yaml)."""

    input_size: HeightWidth = rule(why="[height, width]")
    complexity: ComplexityOptions


class ShowAug(Section):
    """tools/show_aug.py's own keys (deeplab/conf/show_aug.yaml)."""

    num: int = rule(ge=1)
    columns: Annotated[int, Field(ge=1)] | None = rule(why="null: about square")


class InspectModel(Section):
    """tools/inspect_model.py's own keys (deeplab/conf/inspect_model.yaml)."""

    num_images: int = rule(ge=1)
    size: int = rule(ge=33, le=MAX_CROP)
    channels: int = rule(ge=1)


class MemoryBudget(Section):
    """tools/memory.py's own keys (deeplab/conf/memory.yaml)."""

    budget_gb: Number = rule(why="GiB, e.g. 80 for an 80 GiB device", gt=0)


class MemoryTool(Section):
    memory: MemoryBudget


def _plain(node, section: type[BaseModel]) -> dict:
    """The keys a section declares, resolved, as plain Python values: only what the rules read is
    resolved (the rest may hold interpolations only Hydra's run can resolve)."""
    values = {}
    for name, field in section.model_fields.items():
        if name not in node:
            continue
        value = node[name]
        inner = next((t for t in (field.annotation, *getattr(field.annotation, "__args__", ()))
                      if isinstance(t, type) and issubclass(t, BaseModel)), None)
        if inner is not None and isinstance(value, DictConfig):
            values[name] = _plain(value, inner)
        elif isinstance(value, DictConfig | ListConfig):
            values[name] = OmegaConf.to_container(value, resolve=True)
        else:
            values[name] = value
    return values


def _as_written(value):
    """A value as it is written on the command line: null, true, false."""
    if value is None:
        return "null"
    if isinstance(value, str) and value.lstrip("-").replace(".", "", 1).isdigit():
        return f"'{value}'"  # a quoted number, which the rules take as text: say so
    return str(value).lower() if isinstance(value, bool) else value


def _field_at(section: type[BaseModel], loc: tuple) -> tuple[list[str], Any]:
    """The path of the declared field an error's location points into, and that field."""
    path, field = [], None
    for part in loc:
        if not isinstance(part, str) or section is None or part not in section.model_fields:
            break
        field = section.model_fields[part]
        path.append(part)
        section = next((t for t in (field.annotation, *getattr(field.annotation, "__args__", ()))
                        if isinstance(t, type) and issubclass(t, BaseModel)), None)
    return path, field


def check(node, section: type[BaseModel], prefix: str = "") -> None:
    """Validates a config node against a section; the first broken rule as a one-line ConfigError."""
    values = _plain(node, section)
    try:
        section.model_validate(values)
    except ValidationError as err:
        error = err.errors()[0]
        if error["type"] == "needs_gpu":
            raise ConfigError(error["msg"]) from None
        if error["type"] == "not_allowed":
            ctx = error["ctx"]
            key, value, allowed_values = ctx["key"], ctx["value"], ctx["allowed"]
        else:
            path, field = _field_at(section, error["loc"])
            key = prefix + ".".join(path)
            value = values
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            if error["type"] == "missing":
                raise required(key) from None
            words = error["msg"] if field is None else allowed(field.annotation, field.metadata)
            why = field.description if field is not None else None
            allowed_values = f"{words} ({why})" if why else words
        raise ConfigError(f"{key}={_as_written(value)} is not allowed; allowed: {allowed_values}") from None


# The loss options by their class, and the tasks each fits (a loss of the user's own is not checked).
LOSSES = {"deeplab.training.losses.CrossEntropy": ("ce", ("multiclass",)),
          "deeplab.training.losses.BinaryCrossEntropy": ("bce", ("binary", "multilabel")),
          "deeplab.training.losses.BCEDice": ("bce_dice", ("binary", "multilabel")),
          "segmentation_models_pytorch.losses.DiceLoss": ("dice", TASKS),
          "deeplab.training.losses.Focal": ("focal", TASKS)}


def check_loss_fits_task(cfg: DictConfig) -> None:
    task = cfg.task.name if cfg.get("task") else "multiclass"
    name, tasks = LOSSES.get(cfg.loss.get("_target_"), (None, TASKS))
    if task not in tasks:
        fitting = [option for option, fits in LOSSES.values() if task in fits]
        raise ConfigError(f"loss={name} is not allowed with task={task}; allowed: {', '.join(fitting)}")
    mode = cfg.loss.get("mode")
    if mode is not None and mode != task:  # smp's losses take the task as their mode
        raise ConfigError(f"loss.mode={mode} is not allowed with task={task}; allowed: {task} (the default, "
                          "${task.name})")


def validate(cfg: DictConfig) -> None:
    """Every rule of the train config (train.py, the tools)."""
    check(cfg, Stride)
    check(cfg, TrainConfig)
    check_loss_fits_task(cfg)
    bands = cfg.data.get("in_channels", 3)
    if bands != 3 and "in_channels" not in cfg.data.dataset:  # the dataset class would read RGB
        raise ConfigError(f"data.in_channels={bands} is not allowed with {cfg.data.dataset._target_}; allowed: 3, "
                          "or data=folder, which reads multi-band .tif/.tiff/.npy images")


def validate_eval(evaluation: DictConfig) -> None:
    """The eval group, shared by train.py, eval.py and predict.py."""
    check(evaluation, Eval, "eval.")


def validate_evaluate(cfg: DictConfig) -> None:
    check(cfg, CheckpointStride)
    validate_eval(cfg.eval)


def validate_predict(cfg: DictConfig) -> None:
    check(cfg, Predict)
    validate_evaluate(cfg)


def validate_complexity(cfg: DictConfig) -> None:
    check(cfg, ComplexityTool)


def validate_show_aug(cfg: DictConfig) -> None:
    """tools/show_aug.py's own keys (the train config's are checked with every train-config command)."""
    check(cfg, ShowAug)


def validate_inspect(cfg: DictConfig) -> None:
    check(cfg, InspectModel)


def validate_export(cfg: DictConfig) -> None:
    check(cfg, CheckpointStride)
    check(cfg, Export)


def validate_memory(cfg: DictConfig) -> None:
    """tools/memory.py's budget (the train config's rules are checked with every train-config command)."""
    check(cfg, MemoryTool)


def default_class_names(cfg: DictConfig, dataset_defaults: DictConfig | None) -> str | None:
    """With data.num_classes changed and data.class_names left at the dataset config's own list,
    the classes are named class_0 .. class_{N-1}; returns the line that says so. A list given
    any other way is the user's, and a wrong length stays an error (validate)."""
    data = cfg.data
    defaults = None if dataset_defaults is None else dataset_defaults.get("class_names")
    whole = isinstance(data.num_classes, int) and not isinstance(data.num_classes, bool)
    if not whole or data.num_classes < 2 or defaults is None:
        return None
    if len(data.class_names) == data.num_classes or list(data.class_names) != list(defaults):
        return None
    data.class_names = [f"class_{i}" for i in range(data.num_classes)]
    return (f"note: data.num_classes={data.num_classes} with the dataset's {len(defaults)} default class names: "
            f"the classes are named class_0 .. class_{data.num_classes - 1}; name them with data.class_names=[...]")
