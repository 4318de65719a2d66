"""Every config group option composes, sets what it should, and instantiates."""

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from deeplab.builders.model import resolve_normalisation
from deeplab.cli.command_line import prepare
from deeplab.data.transforms import evaluation
from deeplab.errors import ConfigError
from deeplab.inference.multiscale import grid_size
from deeplab.inference.pixels import normaliser
from deeplab.schema import validate

from .conftest import CONF_DIR, assert_one_line_error, compose_config, group_options, run_entry

GROUPS = ["backbone", "decoder", "aug", "optim", "loss", "task", "trainer", "recipe", "data", "logger", "finetune",
          "eval", "callbacks", "paths", "hydra", "experiment", "hparams_search", "debug"]


def test_defaults_list_has_every_group():
    defaults = OmegaConf.load(CONF_DIR / "train.yaml").defaults
    names = [next(iter(d)) if isinstance(d, dict) or OmegaConf.is_dict(d) else d for d in defaults]
    names = [n.removeprefix("optional ") for n in names]
    assert names == ["_self_", *GROUPS, "override hydra/job_logging", "override hydra/launcher"]  # overrides last


# Options that fit one task, composed with it (which options fit which task: tests/training/test_tasks.py)
TASK_COMPANIONS = {"binary": ["data=synthetic_binary"], "synthetic_multilabel": ["task=multilabel"],
                   "multilabel": ["data=synthetic_multilabel"], "bce": ["task=binary", "data=synthetic_binary"],
                   "bce_dice": ["task=binary", "data=synthetic_binary"]}


@pytest.mark.parametrize("group", [g for g in GROUPS if g not in ("hydra", "paths")])
def test_every_option_composes(group):
    options = group_options(CONF_DIR, group)
    assert options, f"deeplab/conf/{group} has no options"
    for option in options:
        # torch's SyncBatchNorm needs CUDA: validate's refusal on CPU is tested in test_value_errors
        cpu_only = ["trainer.sync_batchnorm=false"] if option == "ddp" and not torch.cuda.is_available() else []
        cfg = compose_config(f"{group}='{option}'", *cpu_only, *TASK_COMPANIONS.get(option, []))
        assert cfg.model.backbone.name
        if group not in ("experiment",):
            validate(cfg)


@pytest.mark.parametrize("option, name", [("resnet50", "resnet50"), ("resnet101", "tu-resnet101s"),
                                          ("xception65", "tu-xception65"), ("xception", "tu-xception65"),
                                          ("mobilenet_v2", "mobilenet_v2")])
def test_backbone_sets_encoder(option, name):
    cfg = compose_config(f"backbone={option}")
    assert cfg.model.backbone.name == name
    assert cfg.model.backbone.weights is None


@pytest.mark.parametrize("stride, rates", [(8, [12, 24, 36]), (16, [6, 12, 18]), (32, [3, 6, 9])])
def test_output_stride_sets_rates(stride, rates):
    cfg = compose_config(f"os={stride}")
    assert cfg.os == cfg.model.output_stride == stride
    assert list(cfg.model.aspp.rates) == rates
    explicit = compose_config(f"os={stride}", "model.aspp.rates=[2,4,6]")  # a list given is kept at any stride
    assert list(explicit.model.aspp.rates) == [2, 4, 6]
    validate(explicit)


def test_no_yaml_file_lists_aspp_rates():
    """The rates are derived from the output stride in one place (deeplab.model.aspp.paper_rates)."""
    for path in CONF_DIR.rglob("*.yaml"):
        for node in _nodes(OmegaConf.load(path)):
            rates = node.get("rates") if isinstance(node, dict) else None
            assert rates is None or isinstance(rates, str), f"{path} lists ASPP rates: {rates}"


def _nodes(node):
    node = OmegaConf.to_container(node) if OmegaConf.is_config(node) else node
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def test_gpu_trainer_turns_on_the_fast_path_and_the_command_line_still_wins():
    cfg = compose_config("trainer=gpu")
    assert (cfg.trainer.accelerator, cfg.trainer.precision, cfg.trainer.benchmark) == ("gpu", "bf16-mixed", True)
    assert cfg.model.channels_last is True and cfg.trainer.max_epochs == 5  # the rest from trainer/default
    cfg = compose_config("trainer=gpu", "trainer.precision=32-true", "model.channels_last=false")
    assert (cfg.trainer.precision, cfg.model.channels_last) == ("32-true", False)


def test_decoder_options():
    plus = compose_config("decoder=deeplabv3plus").model.decoder
    assert dict(plus) == {"low_level_channels": 48, "channels": 256, "num_convs": 2, "separable": True,
                          "depthwise_bn_relu": True}
    light = compose_config("decoder=deeplabv3plus_light").model.decoder
    assert dict(light) == {**plus, "num_convs": 1, "depthwise_bn_relu": False}
    assert compose_config("decoder=deeplabv3").model.decoder is None


def test_public_defaults():
    cfg = compose_config()
    assert dict(cfg.model.aspp) == {"channels": 256, "rates": [6, 12, 18], "separable": True,
                                    "depthwise_bn_relu": True, "image_pooling": True, "dropout": 0.1,
                                    "post_conv": False}
    assert cfg.data.ignore_index == 255
    assert list(cfg.eval.scales) == [1.0] and cfg.eval.flip is False and cfg.eval.output_stride is None
    voc = compose_config("data=voc")
    assert voc.data.num_classes == 21 and voc.model.backbone.name == "resnet50"
    assert voc.optim.optimizer._target_ == "torch.optim.SGD"
    assert (voc.optim.lr, voc.optim.momentum, voc.optim.poly_power) == (0.007, 0.9, 0.9)
    assert (voc.aug.scale_min, voc.aug.scale_max, voc.aug.scale_step) == (0.5, 2.0, 0.25)


def test_synthetic_brings_its_recipe_and_the_command_line_wins():
    quick = compose_config()
    assert quick.model.backbone.name == "resnet18"
    assert quick.optim.optimizer._target_ == "torch.optim.AdamW"
    assert (quick.aug.scale_min, quick.aug.scale_max) == (1.0, 1.0)  # aug=crop_flip
    assert (quick.trainer.max_epochs, quick.trainer.precision) == (3, "auto")  # trainer=quick
    chosen = compose_config("optim=sgd", "backbone=xception", "aug=deeplab", "trainer=cpu")
    assert chosen.optim.lr == 0.007 and chosen.optim.momentum == 0.9
    assert chosen.model.backbone.name == "tu-xception65"
    assert chosen.aug.scale_min == 0.5
    assert (chosen.trainer.max_epochs, chosen.trainer.precision) == (5, "32-true")


def test_camvid_brings_the_small_data_recipe_and_the_command_line_wins():
    camvid = compose_config("data=camvid")
    assert camvid.model.backbone.name == "resnet18" and camvid.optim.optimizer._target_ == "torch.optim.SGD"
    assert (camvid.aug.scale_min, camvid.aug.scale_max) == (1.0, 1.0)  # aug=crop_flip
    assert camvid.model.aspp.dropout == 0.5 and camvid.model.decoder.num_convs == 1 and camvid.model.aspp.post_conv
    assert camvid.model.aspp.depthwise_bn_relu is False and camvid.model.decoder.depthwise_bn_relu is False
    assert list(camvid.model.aspp.rates) == [12, 24, 36]
    assert (camvid.trainer.max_epochs, camvid.trainer.precision, camvid.trainer.check_val_every_n_epoch) == \
        (30, "auto", 3)
    chosen = compose_config("data=camvid", "backbone=resnet50", "decoder=deeplabv3", "model.aspp.dropout=0.1",
                            "trainer.max_epochs=30")
    assert chosen.model.backbone.name == "resnet50" and chosen.model.decoder is None
    assert (chosen.model.aspp.dropout, chosen.trainer.max_epochs) == (0.1, 30)
    paper = compose_config("data=camvid", "recipe=paper")  # the paper's head and train.yaml's groups
    assert paper.model.decoder.num_convs == 2 and paper.model.aspp.dropout == 0.1
    assert paper.model.aspp.depthwise_bn_relu and paper.model.decoder.depthwise_bn_relu
    assert paper.model.backbone.name == "resnet50" and paper.trainer.max_epochs == 5


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["paper", "small_data"])
@pytest.mark.parametrize("group, options", [("decoder", ["deeplabv3", "deeplabv3plus", "deeplabv3plus_light"]),
                                            ("os", [8, 16, 32]),
                                            ("data", ["synthetic", "voc", "camvid", "folder", "cityscapes"])])
def test_each_recipe_keeps_every_choice_it_meets(recipe, group, options):
    for option in options:
        cfg = compose_config(f"recipe={recipe}", f"{group}={option}")
        validate(cfg)
        chosen = compose_config(f"{group}={option}")
        if group == "decoder":  # the decoder chosen is the decoder built, whatever the recipe
            assert (cfg.model.decoder is None) == (option == "deeplabv3")
            if option != "deeplabv3":
                assert dict(cfg.model.decoder) == dict(chosen.model.decoder)
        if group == "os":  # paper: the output stride's rates; small_data: smp's at every stride, as smp has them
            rates = list(chosen.model.aspp.rates) if recipe == "paper" else [12, 24, 36]
            assert list(cfg.model.aspp.rates) == rates and cfg.model.output_stride == int(option)


@pytest.mark.parametrize("aug", ["deeplab", "keras", "none", "deeplab_small", "crop_flip"])
def test_aug_instantiates(aug):
    cfg = compose_config(f"aug={aug}")
    resolve_normalisation(cfg)
    transform = instantiate(cfg.aug)
    out = transform(image=np.zeros((90, 70, 3), np.uint8), mask=np.zeros((90, 70), np.uint8))
    assert tuple(out["image"].shape) == (3, cfg.data.crop_size, cfg.data.crop_size)


@pytest.mark.parametrize("loss", ["ce", "dice", "focal"])
def test_loss_instantiates_and_ignores_void(loss):
    import torch

    criterion = instantiate(compose_config(f"loss={loss}").loss)
    logits = torch.randn(2, 5, 8, 8, requires_grad=True)
    target = torch.full((2, 8, 8), 255)
    target[:, :4] = 1
    value = criterion(logits, target)
    value.backward()
    assert torch.isfinite(value)
    assert logits.grad[:, :, 4:].abs().sum() == 0  # void pixels give no gradient


@pytest.mark.parametrize("argv, message", [
    (["backbone=xceptoin"], "backbone=xceptoin is not allowed; allowed: mobilenet_v2, resnet101, resnet18, "
                            "resnet50, xception, xception65 (did you mean xception?)"),
    (["decoder=v3"], "decoder=v3 is not allowed; allowed: deeplabv3, deeplabv3plus"),
    (["model.aspp.chanels=64"], "model.aspp.chanels is not a config key (did you mean model.aspp.channels?)"),
    (["experiment=null"], "experiment=null is not allowed; to drop the experiment group write ~experiment"),
    # the arguments of a node's _target_, checked against its signature
    (["trainer.limit_train_bathces=2"], "trainer.limit_train_bathces is not a config key nor an argument of "
                                        "pytorch_lightning.Trainer (did you mean trainer.limit_train_batches?)"),
    (["trainer.max_epochs=abc"], "trainer.max_epochs=abc is not allowed; allowed: null or an integer"),
    (["trainer.accumulate_grad_batches=2.5"], "trainer.accumulate_grad_batches=2.5 is not allowed; allowed: an "
                                              "integer"),
    (["trainer.precision=17"], "trainer.precision=17 is not allowed; allowed: null, 64, 32, 16, transformer-engine"),
    (["trainer.precision=bf16-auto"], "trainer.precision=bf16-auto is not allowed; allowed: null, 64, 32, 16"),
    (["++trainer.limit_train_batches=abc"], "trainer.limit_train_batches=abc is not allowed; allowed: null or a "
                                            "number"),
    (["logger=csv", "logger.csv.flush_logs_every_n_step=5"], "logger.csv.flush_logs_every_n_step is not a config key "
                                                             "nor an argument of pytorch_lightning.loggers.CSVLogger "
                                                             "(did you mean logger.csv.flush_logs_every_n_steps?)"),
])
def test_command_line_errors(argv, message, tmp_path, capsys, monkeypatch):
    code, stderr = run_entry("train.py", *argv, f"hydra.run.dir={tmp_path / 'run'}", capsys=capsys,
                             monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, message)
    assert not (tmp_path / "run").exists()  # refused before Hydra makes the run directory


def test_command_line_puts_flags_first():
    assert prepare(["os=8", "backbone=xception"], CONF_DIR, "train") == ["os=8", "backbone=xception"]
    assert prepare(["os=8,16", "-m"], CONF_DIR, "train") == ["-m", "os=8,16"]  # flags first, as Hydra reads them
    assert prepare(["os=8", "--cfg", "job", "~experiment"], CONF_DIR, "train") == ["--cfg", "job", "os=8",
                                                                                   "~experiment"]


@pytest.mark.parametrize("override, message", [
    ("optim.lr=-0.1", "optim.lr=-0.1 is not allowed; allowed: a number > 0"),
    ("os=12", "os=12 is not allowed; allowed: 8, 16, 32"),
    ("os='8'", "os='8' is not allowed; allowed: 8, 16, 32"),  # a quoted number is text: said as written
    ("model.output_stride=12", "model.output_stride=12 is not allowed; allowed: 8, 16, 32"),
    ("model.backbone.weights=coco", "model.backbone.weights=coco is not allowed; allowed: null, imagenet"),
    ("data.batch_size=1", "data.batch_size=1 is not allowed"),
    ("eval.output_stride=4", "eval.output_stride=4 is not allowed; allowed: null, 8, 16, 32"),
    ("data.num_classes=3", "data.class_names=["),
    ("model.decoder.low_level_channels=4", "model.decoder.low_level_channels=4 is not allowed; allowed: an "
                                           "integer from 8 to 64"),
    ("model.decoder.low_level_channels=96", "model.decoder.low_level_channels=96 is not allowed"),
    ("model.decoder.num_convs=0", "model.decoder.num_convs=0 is not allowed; allowed: 1, 2, 3"),
    ("model.decoder.num_convs=4", "model.decoder.num_convs=4 is not allowed; allowed: 1, 2, 3"),
    ("model.decoder.channels=0", "model.decoder.channels=0 is not allowed; allowed: an integer > 0"),
    ("data.std=[0.5,0,0.5]", "data.std=[0.5, 0, 0.5] is not allowed; allowed: null or a list of numbers > 0 "
                             "(null: the encoder's pretrained statistics; else one a channel)"),
    ("data.mean=[0.5]", "data.mean=[0.5] is not allowed"),
    ("trainer=ddp trainer.accelerator=cpu", "trainer.sync_batchnorm=true needs GPUs"),
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1 is not allowed; allowed: null or a number > 0 "
                                     "(null: off)"),
    ("trainer.gradient_clip_algorithm=max", "trainer.gradient_clip_algorithm=max is not allowed; allowed: norm, "
                                            "value"),
    ("data.prefetch_factor=0", "data.prefetch_factor=0 is not allowed; allowed: an integer >= 1"),
    ("data.colors=[[0,0,0]]", "data.colors=[[0, 0, 0]] is not allowed; allowed: null (the VOC colour map) or 5 "
                              "[r, g, b] triples of 0..255"),
])
def test_value_errors(override, message):
    with pytest.raises(ConfigError) as err:
        validate(compose_config(*override.split()))
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("backbone, mean, std", [
    ("xception65", [0.5] * 3, [0.5] * 3),  # TF-ported weights: inputs in [-1, 1]
    ("resnet101", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ("resnet50", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])
def test_normalisation_follows_the_encoder_weights(backbone, mean, std):
    cfg = compose_config(f"backbone={backbone}", "model.backbone.weights=imagenet")
    assert resolve_normalisation(cfg) == []
    assert list(cfg.data.mean) == pytest.approx(mean) and list(cfg.data.std) == pytest.approx(std)
    pixels = np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    image = normaliser(cfg.data)(evaluation()(image=pixels)["image"][None])[0]
    expected = (np.array([0.0, 1.0])[:, None] - np.array(mean)) / np.array(std)
    assert image[:, 0, :].T.numpy() == pytest.approx(expected, abs=1e-5)


def test_explicit_normalisation_is_kept_and_a_mismatch_is_named():
    cfg = compose_config("backbone=xception65", "model.backbone.weights=imagenet", "data.mean=[0.485,0.456,0.406]")
    notes = resolve_normalisation(cfg)
    assert list(cfg.data.mean) == [0.485, 0.456, 0.406] and list(cfg.data.std) == [0.5] * 3
    assert notes == ["note: data.mean=[0.485, 0.456, 0.406] differs from the [0.5, 0.5, 0.5] that the "
                     "tu-xception65 weights were trained with; null follows the weights"]


PROTOCOL = {  # the official protocol (../shared/paper/README.md), common to the three recipes
    "optim.optimizer._target_": "torch.optim.SGD", "optim.lr": 0.007, "optim.momentum": 0.9,
    "optim.poly_power": 0.9, "data.batch_size": 16, "aug._target_": "deeplab.data.transforms.deeplab_train",
    "aug.scale_min": 0.5, "aug.scale_max": 2.0, "aug.scale_step": 0.25, "model.backbone.weights": "imagenet",
    "model.output_stride": 16, "model.decoder.low_level_channels": 48, "model.decoder.num_convs": 2,
    "model.decoder.channels": 256, "trainer.max_epochs": -1,
}


@pytest.mark.parametrize("experiment, expected", [
    ("voc_aug_xception65", {"data.train_split": "train_aug", "data.crop_size": 513, "optim.weight_decay": 4e-5,
                            "trainer.max_steps": 30000, "model.backbone.name": "tu-xception65",
                            "model.aspp.separable": True, "model.decoder.separable": True, "eval.output_stride": 8,
                            "eval.scales": [0.5, 0.75, 1.0, 1.25, 1.5, 1.75], "eval.flip": True,
                            "data.num_classes": 21}),
    ("voc_aug_resnet101", {"data.train_split": "train_aug", "data.crop_size": 513, "optim.weight_decay": 1e-4,
                           "trainer.max_steps": 30000, "model.backbone.name": "tu-resnet101s",
                           "model.backbone.multi_grid": [1, 2, 4], "eval.output_stride": 8,
                           "eval.scales": [0.5, 0.75, 1.0, 1.25, 1.5, 1.75], "eval.flip": True}),
    ("cityscapes_xception65", {"data.train_split": "train", "data.crop_size": 769, "optim.weight_decay": 4e-5,
                               "trainer.max_steps": 90000, "model.backbone.name": "tu-xception65",
                               "data.num_classes": 19, "eval.output_stride": None, "eval.scales": [1.0],
                               "eval.flip": False, "eval.mode": "whole"}),
])
def test_paper_recipes_carry_the_official_protocol(experiment, expected):
    cfg = compose_config(f"experiment={experiment}")
    validate(cfg)
    for key, value in {**PROTOCOL, **expected}.items():
        actual = OmegaConf.select(cfg, key)
        actual = OmegaConf.to_container(actual) if OmegaConf.is_config(actual) else actual
        assert actual == value, (key, actual, value)
    if experiment.startswith("cityscapes"):
        assert grid_size((1024, 2048), cfg.model.output_stride) == (1025, 2049)  # the official eval size


@pytest.mark.parametrize("data", ["voc", "voc_aug", "cityscapes", "ade20k", "folder", "synthetic"])
def test_every_dataset_config_has_consistent_classes(data):
    cfg = compose_config(f"data={data}")
    validate(cfg)
    assert len(cfg.data.class_names) == cfg.data.num_classes
    assert cfg.data.colors is None or len(cfg.data.colors) == cfg.data.num_classes


@pytest.mark.parametrize("launcher", ["submitit_slurm", "slurm"])
def test_slurm_launchers_compose(launcher):
    overrides = [f"hydra/launcher={launcher}", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                 "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=600"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    launcher_cfg = cfg.hydra.launcher
    assert launcher_cfg._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher_cfg.partition, launcher_cfg.timeout_min) == ("gpu", 600)
    if launcher == "slurm":  # sized from the trainer: one task a GPU, the trainer's node count
        assert (launcher_cfg.gpus_per_node, launcher_cfg.tasks_per_node, launcher_cfg.nodes) == (4, 4, 2)
    assert cfg.trainer.sync_batchnorm is True and cfg.trainer.strategy == "ddp"


def test_finetune_choices():
    keras = compose_config("finetune=keras")
    assert keras.optim.optimizer._target_ == "torch.optim.RMSprop" and keras.optim.lr == 1e-5
    assert keras.finetune.stages[0].trainable[0] == "encoder.last_stage"
    paper = compose_config("finetune=paper", "data=voc")
    assert paper.model.output_stride == 16 and paper.optim.lr == 0.007  # stage 1 as configured
    overrides = paper.finetune.second_stage.overrides
    assert (overrides["os"], overrides["optim.lr"], overrides["data.train_split"]) == (8, 1e-4, "trainval")
    assert paper.finetune.second_stage.freeze_bn == "all"
    for key, value in overrides.items():  # as training's second stage applies them
        OmegaConf.update(paper, key, value, merge=False)
    assert paper.model.output_stride == 8 and list(paper.model.aspp.rates) == [12, 24, 36]
    assert compose_config("finetune=staged").finetune.stages[1].trainable[0] == "encoder.last_stage"


@pytest.mark.parametrize("argv, expected", [
    (["trainer.limit_train_batches=2", "trainer.limit_val_batches=1"],
     ["++trainer.limit_train_batches=2", "++trainer.limit_val_batches=1"]),
    (["trainer.max_epochs=1"], ["trainer.max_epochs=1"]),  # a key the config has stays as it is
    (["trainer.val_check_interval=0.5", "-m", "trainer.accumulate_grad_batches=1,2"],
     ["-m", "++trainer.val_check_interval=0.5", "++trainer.accumulate_grad_batches=1,2"]),
    (["logger=csv", "logger.csv.flush_logs_every_n_steps=5"],
     ["logger=csv", "++logger.csv.flush_logs_every_n_steps=5"]),
    (["optim=sgd", "optim.optimizer.nesterov=true"], ["optim=sgd", "++optim.optimizer.nesterov=true"]),
])
def test_arguments_of_a_target_are_keys(argv, expected):
    """Every argument of a node's _target_ (the Trainer, a logger, the optimizer) works by name."""
    assert prepare(argv, CONF_DIR, "train") == expected


def test_derived_rates_resolve_in_place():
    """`--cfg job --resolve` and the stored run config resolve the config in place."""
    model = compose_config("os=8").model  # (the paths need Hydra's run to resolve)
    OmegaConf.resolve(model)
    assert model.aspp.rates == [12, 24, 36] and not OmegaConf.is_interpolation(model.aspp, "rates")
