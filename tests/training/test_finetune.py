"""Staged fine-tuning on a tiny model on CPU: frozen means frozen, stages start on time, the
unfreezing keeps the optimizer's state, and a resume continues in the right stage."""

import copy
import json
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader, Dataset

from deeplab.builders.model import build_model
from deeplab.model import DeepLab
from deeplab.model.parts import resolve_group
from deeplab.training.finetune import StagedFinetuning, parameter_groups
from deeplab.training.module import SegmentationModule
from deeplab.training.run import check_stages
from deeplab.training.schedule import poly_schedule

from ..conftest import (
    CONF_DIR,
    SMALL,
    TINY_NET,
    assert_one_line_error,
    compose_config,
    group_options,
    run_entry,
    run_train,
)

BASE_LR = 0.01


class Blobs(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        generator = torch.Generator().manual_seed(index)
        mask = (torch.rand(48, 48, generator=generator) > 0.5).long()
        return {"image": torch.randn(3, 48, 48, generator=generator) + mask, "mask": mask, "name": str(index)}


def make_module(encoder_lr_mult: float = 1.0) -> SegmentationModule:
    torch.manual_seed(0)
    model = DeepLab(num_classes=2, backbone="resnet18", aspp={"channels": 16, "rates": (6, 12, 18)},
                    decoder={"low_level_channels": 8, "channels": 16, "num_convs": 1, "separable": True})
    return SegmentationModule(
        model=model, loss=torch.nn.CrossEntropyLoss(ignore_index=255),
        optimizer=partial(torch.optim.SGD, lr=BASE_LR, momentum=0.9), scheduler=partial(poly_schedule, power=0.9),
        normalise=torch.nn.Identity(),  # Blobs gives network inputs already
        num_classes=2, class_names=["a", "b"],
        param_groups=partial(parameter_groups, base_lr=BASE_LR, encoder_lr_mult=encoder_lr_mult))


def fit(module, callbacks, tmp_path, max_epochs=2, ckpt_path=None, batch_size=4, **trainer_args):
    trainer = pl.Trainer(accelerator="cpu", max_epochs=max_epochs, callbacks=callbacks, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                         limit_val_batches=0, **trainer_args)
    trainer.fit(module, train_dataloaders=DataLoader(Blobs(), batch_size=batch_size), ckpt_path=ckpt_path)
    return trainer


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.model.state_dict().items()}


def test_frozen_groups_stay_bit_identical_and_frozen_bn_does_not_move(tmp_path):
    module = make_module()
    before = snapshot(module)
    stages = [{"start_epoch": 0, "trainable": ["aspp", "decoder", "head"], "freeze_bn": True}]
    fit(module, [StagedFinetuning(stages, base_lr=BASE_LR)], tmp_path)
    after = snapshot(module)
    encoder = [k for k in before if k.startswith("encoder.")]
    assert any("running_mean" in k for k in encoder)
    assert all(torch.equal(before[k], after[k]) for k in encoder)  # weights, BN affine and running stats
    changed = [k for k in before if not k.startswith("encoder.") and not torch.equal(before[k], after[k])]
    assert any(k.startswith("aspp.") for k in changed) and any(k.startswith("classifier.") for k in changed)
    assert any("running_mean" in k for k in changed)  # the trained parts' batch norm still learns


def test_unfrozen_bn_statistics_move_when_freeze_bn_is_off(tmp_path):
    module = make_module()
    before = snapshot(module)
    stages = [{"start_epoch": 0, "trainable": ["aspp", "decoder", "head"], "freeze_bn": False}]
    fit(module, [StagedFinetuning(stages, base_lr=BASE_LR)], tmp_path, max_epochs=1)
    after = snapshot(module)
    weights = [k for k in before if k.startswith("encoder.") and k.endswith(".weight")]
    assert all(torch.equal(before[k], after[k]) for k in weights)  # frozen parameters stay
    assert not torch.equal(before["encoder.bn1.running_mean"], after["encoder.bn1.running_mean"])


class Recorder(pl.Callback):
    """The optimizer's groups and the last-stage weights at every step."""

    def __init__(self):
        self.steps = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        optimizer = trainer.optimizers[0]
        self.steps.append({
            "step": trainer.global_step,
            "groups": [(g.get("name"), g["lr"]) for g in optimizer.param_groups],
            "head_momentum": optimizer.state[pl_module.model.classifier.weight].get("momentum_buffer", None),
            "layer4_requires_grad": pl_module.model.encoder.layer4[0].conv1.weight.requires_grad,
        })


@pytest.mark.parametrize("batch_size, accumulate", [(4, 1), (2, 2)])
def test_a_group_unfreezes_at_its_step_with_its_lr_and_the_others_keep_their_state(tmp_path, batch_size,
                                                                                   accumulate):
    """start_step counts optimizer steps: with two batches of 2 accumulated a step, the stage,
    its learning rate and the poly schedule fall on the same steps as with batches of 4."""
    module = make_module()
    stages = [{"start_epoch": 0, "trainable": ["aspp", "decoder", "head"], "freeze_bn": True},
              {"start_step": 3, "trainable": ["encoder.layer4"], "lr_mult": {"encoder.layer4": 0.1}}]
    recorder = Recorder()
    fit(module, [StagedFinetuning(stages, base_lr=BASE_LR), recorder], tmp_path, max_epochs=3,
        batch_size=batch_size, accumulate_grad_batches=accumulate)
    total = 6  # 8 images, 4 a step, 3 epochs
    assert len(recorder.steps) == total * accumulate
    assert all(r["layer4_requires_grad"] == (r["step"] >= 3) for r in recorder.steps)  # every batch of a step
    by_step = {r["step"]: r for r in recorder.steps}
    assert [by_step[s]["layer4_requires_grad"] for s in range(total)] == [False, False, False, True, True, True]
    assert [name for name, _ in by_step[2]["groups"]] == ["head"]
    names_lrs = dict(by_step[3]["groups"])
    assert list(names_lrs) == ["head", "encoder.layer4"]
    poly = (1 - 3 / total) ** 0.9
    assert names_lrs["encoder.layer4"] == pytest.approx(BASE_LR * 0.1 * poly, rel=1e-6)
    assert names_lrs["head"] == pytest.approx(BASE_LR * poly, rel=1e-6)
    later = dict(by_step[5]["groups"])  # the poly schedule scales the new group with the others
    assert later["encoder.layer4"] / later["head"] == pytest.approx(0.1, rel=1e-6)
    # the head's momentum, built over steps 0-2, is still there after the unfreeze at step 3
    assert by_step[3]["head_momentum"] is not None
    assert not torch.equal(by_step[3]["head_momentum"], torch.zeros_like(by_step[3]["head_momentum"]))


@pytest.mark.slow
def test_accumulated_batches_follow_the_poly_schedule_by_optimizer_step(tmp_path):
    """trainer.accumulate_grad_batches=2 on batches of 2: the same learning rate at every optimizer
    step as batches of 4 (the schedule's length is optimizer steps, not batches)."""
    lrs = {}
    for batch_size, accumulate in ((4, 1), (2, 2)):
        recorder = Recorder()
        trainer = fit(make_module(), [recorder], tmp_path / str(batch_size), max_epochs=3, batch_size=batch_size,
                      accumulate_grad_batches=accumulate)
        assert trainer.global_step == 6 and trainer.estimated_stepping_batches == 6
        lrs[batch_size] = {r["step"]: dict(r["groups"]) for r in recorder.steps}
    assert lrs[2] == lrs[4] and len(lrs[4]) == 6
    assert lrs[4][5]["head"] == pytest.approx(BASE_LR * (1 - 5 / 6) ** 0.9, rel=1e-9)


@pytest.mark.slow
def test_resume_mid_schedule_continues_in_the_right_stage(tmp_path):
    stages = [{"start_epoch": 0, "trainable": ["aspp", "decoder", "head"], "freeze_bn": True},
              {"start_epoch": 1, "trainable": ["encoder.layer4"], "lr_mult": {"encoder.layer4": 0.1}}]
    first = make_module()
    fit(first, [StagedFinetuning(stages, base_lr=BASE_LR), pl.callbacks.ModelCheckpoint(dirpath=tmp_path,
        save_last=True)], tmp_path, max_epochs=2)
    resumed, recorder = make_module(), Recorder()
    fit(resumed, [StagedFinetuning(stages, base_lr=BASE_LR), recorder], tmp_path, max_epochs=3,
        ckpt_path=str(tmp_path / "last.ckpt"))
    assert recorder.steps[0]["step"] == 4 and recorder.steps[0]["layer4_requires_grad"]
    assert [name for name, _ in recorder.steps[0]["groups"]] == ["head", "encoder.layer4"]
    assert not resumed.model.encoder.layer3[0].conv1.weight.requires_grad


def test_layerwise_and_bias_multipliers():
    module = make_module()
    groups = {g["name"]: g for g in parameter_groups(module.model, base_lr=0.1, encoder_lr_mult=0.1,
                                                          bias_lr_mult=2.0)}
    assert {n: g["lr"] for n, g in groups.items()} == pytest.approx(
        {"encoder": 0.01, "encoder.bias": 0.02, "head": 0.1, "head.bias": 0.2})
    assert any(p is module.model.classifier.bias for p in groups["head.bias"]["params"])


def test_group_names_resolve_and_bad_ones_are_named():
    model = make_module().model
    assert resolve_group(model, "encoder.layer4") is model.encoder.layer4
    assert resolve_group(model, "encoder.last_stage")[0] is model.encoder.layer4
    assert [m is model.encoder.layer3 or m is model.encoder.layer4 for m in resolve_group(model, "encoder.layer3+")] \
        == [True, True]
    with pytest.raises(ValueError, match="finetune group 'encoder.layer9': the encoder has no block 'layer9'; "
                                         "its blocks: conv1, bn1, relu, maxpool, layer1"):
        resolve_group(model, "encoder.layer9")
    with pytest.raises(ValueError, match="finetune group 'backbone' is not allowed; allowed: encoder, aspp"):
        resolve_group(model, "backbone")


def test_xception_flows_and_stage_indices():
    model = DeepLab(num_classes=2, backbone="tu-xception65")
    exit_flow = resolve_group(model, "encoder.exit_flow")
    assert exit_flow[0] is model.encoder.model.blocks_19 and exit_flow[1] is model.encoder.model.blocks_20
    assert resolve_group(model, "encoder.4")[-1] is model.encoder.model.blocks_20
    assert len(resolve_group(model, "encoder.middle_flow")) == 16


@pytest.mark.slow
def test_paper_protocol_runs_both_stages(tmp_path, small_synthetic):
    run_dir = tmp_path / "run"
    result = run_train(run_dir, *SMALL, *TINY_NET, "finetune=paper", "trainer.max_epochs=1",
                       "data.prepare.num_train=16", "data.prepare.num_val=4", data_dir=small_synthetic)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "checkpoints" / "best.ckpt").is_file() and (run_dir / "summary.json").is_file()
    stage2 = run_dir / "stage2"
    assert (stage2 / "checkpoints" / "best.ckpt").is_file() and (stage2 / "summary.json").is_file()
    summary = json.loads((stage2 / "summary.json").read_text())
    assert summary["settings"]["train_os"] == 8
    from deeplab.builders.checkpoint import load_checkpoint, model_from_checkpoint

    model, config = model_from_checkpoint(stage2 / "checkpoints" / "best.ckpt")
    assert model.output_stride == 8 and list(config.model.aspp.rates) == [12, 24, 36]
    assert config.optim.lr == pytest.approx(1e-4)
    first = load_checkpoint(run_dir / "checkpoints" / "best.ckpt")["state_dict"]
    second = load_checkpoint(stage2 / "checkpoints" / "best.ckpt")["state_dict"]
    stats = [k for k in first if k.endswith("running_mean")]
    assert stats and all(torch.equal(first[k], second[k]) for k in stats)  # batch norm frozen in stage 2
    assert any(not torch.equal(first[k], second[k]) for k in first if k.endswith("conv2.weight"))  # it trained
    assert "finetune=paper: stage 2 from" in result.stdout


def test_bn_modules_in_frozen_parts_run_in_eval_mode(tmp_path):
    module = make_module()
    stages = [{"start_epoch": 0, "trainable": ["head"], "freeze_bn": True}]
    seen = []

    class Probe(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append([m.training for m in pl_module.model.encoder.modules() if isinstance(m, _BatchNorm)])

    fit(module, [StagedFinetuning(stages, base_lr=BASE_LR), Probe()], tmp_path, max_epochs=2)
    assert seen and not any(any(modes) for modes in seen)


def test_an_unknown_group_stops_the_run_in_one_line(tmp_path, small_synthetic, capsys, monkeypatch):
    code, stderr = run_entry("train.py", *SMALL, f"paths.data_dir={small_synthetic}", "backbone=mobilenet_v2",
                             "finetune=staged", "finetune.stages=[{start_epoch:0,trainable:['encoder.layer4+']}]",
                             f"hydra.run.dir={tmp_path / 'run'}", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "error: finetune group 'encoder.layer4+': the encoder has no block 'layer4'; "
                                        "its blocks: features")


FINETUNES, BACKBONES = group_options(CONF_DIR, "finetune"), group_options(CONF_DIR, "backbone")


@pytest.mark.slow
def test_every_finetune_option_names_groups_every_backbone_has():
    """Composition, and every group of every stage resolved on each backbone's real model."""
    for backbone in BACKBONES:
        model = None
        for finetune in FINETUNES:
            cfg = compose_config(f"finetune={finetune}", f"backbone={backbone}")
            if model is None:
                with torch.device("meta"):  # the module tree is what groups resolve on; no weights needed
                    model = build_model(cfg.model, num_classes=cfg.data.num_classes)
                checkpointed = copy.deepcopy(model)
                checkpointed.set_activation_checkpointing()
            stages = OmegaConf.to_container(cfg.finetune.stages)
            check_stages(model, stages)
            for group in {g for stage in stages for g in stage["trainable"]}:  # the same groups when checkpointed
                assert ([p.shape for p in resolve_group(checkpointed, group).parameters()]
                        == [p.shape for p in resolve_group(model, group).parameters()]), (group, backbone)
            if stages:  # a first stage that freezes nothing, or everything, is not what a recipe means
                first = {id(p) for g in stages[0]["trainable"] for p in resolve_group(model, g).parameters()}
                assert 0 < len(first) < len(list(model.parameters())), (finetune, backbone)


@pytest.mark.slow
@pytest.mark.parametrize("finetune", FINETUNES)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_finetune_option_trains_with_every_backbone(finetune, backbone, tmp_path, small_synthetic, capsys,
                                                         monkeypatch):
    code, stderr, stdout = run_entry(
        "train.py", *SMALL, f"paths.data_dir={small_synthetic}", f"finetune={finetune}", f"backbone={backbone}",
        "trainer.fast_dev_run=true", "data.batch_size=2", "data.crop_size=64", f"hydra.run.dir={tmp_path / 'run'}",
        capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 0, stderr[-3000:]
    if finetune in ("keras", "staged"):  # Lightning's info log: stderr or stdout, as logging is set up
        assert "finetune: stage 0 at epoch 0 step 0: trainable" in stdout + stderr
    if finetune == "paper":
        assert "finetune=paper: stage 2 from stage 1's last weights" in stdout


@pytest.mark.slow
def test_activation_checkpointing_trains_the_same_weights_frozen_parts_and_channels_last_included(
        tmp_path, small_synthetic):
    """finetune=staged (encoder frozen at first) in channels-last memory: one epoch with the
    encoder checkpointed ends at the weights and batch-norm statistics of one without."""
    weights = []
    for checkpointing in ("false", "true"):
        run_dir = tmp_path / checkpointing
        result = run_train(run_dir, *SMALL, *TINY_NET, "finetune=staged", "model.channels_last=true",
                           f"model.activation_checkpointing={checkpointing}", "trainer.max_epochs=1",
                           "data.prepare.num_train=16", data_dir=small_synthetic)
        assert result.returncode == 0, result.stderr[-3000:]
        assert ("activation checkpointing: 4 encoder blocks" in result.stdout) == (checkpointing == "true")
        assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 2  # it trained
        weights.append(torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"])
    plain, checkpointed = weights
    assert list(checkpointed) == list(plain)
    for name, tensor in plain.items():
        torch.testing.assert_close(checkpointed[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
