"""Staged fine-tuning: which parts of the network train when, at what learning rate, and whether
batch norm in the frozen parts keeps its statistics, as a Lightning BaseFinetuning callback."""

from collections.abc import Sequence

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BaseFinetuning
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from deeplab.log import LOG
from deeplab.model.parts import resolve_group


class StagedFinetuning(BaseFinetuning):
    """Stages, each `{start_epoch | start_step, trainable: [groups], lr_mult: {group: m},
    freeze_bn: false | true | all}` (true: batch norm of the frozen parts; all: every batch norm
    keeps its running statistics). A group made trainable stays so; its parameters join the
    running optimizer as a new parameter group at base lr x multiplier x the poly factor of that
    moment, leaving the other groups' state alone."""

    def __init__(self, stages: Sequence[dict], base_lr: float, encoder_lr_mult: float = 1.0):
        super().__init__()
        self.stages = [dict(s) for s in stages]
        self.base_lr, self.encoder_lr_mult = base_lr, encoder_lr_mult
        self.applied = -1  # the last stage applied

    def _frozen_modules(self, model: nn.Module, upto: int) -> list[nn.Module]:
        trainable = [resolve_group(model, g) for s in self.stages[: upto + 1] for g in s.get("trainable", [])]
        keep = {id(p) for m in trainable for p in m.parameters()}
        return [m for m in model.modules() if not list(m.children()) and any(id(p) not in keep for p in m.parameters(
            recurse=False))]

    def freeze_before_training(self, pl_module: pl.LightningModule) -> None:
        for stage in self.stages:  # every name is checked now, not when its stage comes
            for group in stage.get("trainable", []):
                resolve_group(pl_module.model, group)
        # Not BaseFinetuning.freeze: it makes frozen batch norm normalise with batch statistics
        # (track_running_stats=False); here frozen means fixed parameters, and freeze_bn decides
        # whether the running statistics are used as they are (eval mode) or keep updating.
        for module in self._frozen_modules(pl_module.model, 0):
            for param in module.parameters(recurse=False):
                param.requires_grad = False
        self.applied = 0
        self._hold_frozen_bn(pl_module.model)

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.global_step == 0 and self.applied == 0:  # what is frozen, said before the first step
            self._log_stage(pl_module, trainer.optimizers[0])

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._hold_frozen_bn(pl_module.model)  # Lightning puts the model back in train mode

    def finetune_function(self, pl_module, epoch: int, optimizer) -> None:
        self._advance(pl_module, optimizer, epoch=epoch, step=pl_module.trainer.global_step)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        for opt_idx, optimizer in enumerate(trainer.optimizers):
            before = len(optimizer.param_groups)
            self._advance(pl_module, optimizer, epoch=trainer.current_epoch, step=trainer.global_step)
            self._store(pl_module, opt_idx, before, optimizer.param_groups)

    def _due(self, stage: dict, epoch: int, step: int) -> bool:
        return step >= stage["start_step"] if "start_step" in stage else epoch >= stage.get("start_epoch", 0)

    def _advance(self, pl_module, optimizer, epoch: int, step: int) -> None:
        model = pl_module.model
        while self.applied + 1 < len(self.stages) and self._due(self.stages[self.applied + 1], epoch, step):
            self.applied += 1
            stage = self.stages[self.applied]
            factor = pl_module.trainer.lr_scheduler_configs[0].scheduler.factor()  # the poly factor now
            for group in stage.get("trainable", []):
                modules = resolve_group(model, group)
                before = len(optimizer.param_groups)
                default = self.encoder_lr_mult if group.startswith("encoder") else 1.0
                base = self.base_lr * stage.get("lr_mult", {}).get(group, default)
                self.unfreeze_and_add_param_group(modules, optimizer, lr=base * factor, initial_denom_lr=1.0,
                                                  train_bn=True)
                for added in optimizer.param_groups[before:]:
                    added["initial_lr"], added["name"] = base, group  # PolyLR scales it from here
            self._log_stage(pl_module, optimizer)
        self._hold_frozen_bn(model)

    def _hold_frozen_bn(self, model: nn.Module) -> None:
        mode = self.stages[max(self.applied, 0)].get("freeze_bn", False)
        if not mode:
            return
        modules = model.modules() if mode == "all" else self._frozen_modules(model, self.applied)
        for module in modules:
            if isinstance(module, _BatchNorm):
                module.eval()  # running mean and var stay as loaded

    def _log_stage(self, pl_module, optimizer) -> None:
        trainable = sum(p.numel() for p in pl_module.model.parameters() if p.requires_grad)
        groups = ", ".join(f"{g.get('name', 'group' + str(i))} lr {g['lr']:.3g}"
                           for i, g in enumerate(optimizer.param_groups))
        LOG.info(f"finetune: stage {self.applied} at epoch {pl_module.trainer.current_epoch} step "
                       f"{pl_module.trainer.global_step}: trainable {self.stages[self.applied].get('trainable')}, "
                       f"{trainable / 1e6:.2f} M trainable parameters; {groups}")
        metrics = {"finetune/stage": self.applied, "finetune/trainable_params": trainable}
        metrics.update({f"finetune/lr/{g.get('name', i)}": g["lr"] for i, g in enumerate(optimizer.param_groups)})
        for logger in pl_module.trainer.loggers:
            logger.log_metrics(metrics, step=pl_module.trainer.global_step)


def parameter_groups(model: nn.Module, base_lr: float, encoder_lr_mult: float = 1.0,
                     bias_lr_mult: float = 1.0) -> list[dict]:
    """The trainable parameters as optimizer groups: the encoder at base_lr x encoder_lr_mult,
    the rest (ASPP, decoder, head) at base_lr, biases of either times bias_lr_mult (the official
    code's option of 2). Each group carries a `name` for the logs."""
    groups: dict[str, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = "encoder" if name.startswith("encoder.") else "head"
        is_bias = name.endswith(".bias") and bias_lr_mult != 1.0
        key = f"{part}.bias" if is_bias else part
        lr = base_lr * (encoder_lr_mult if part == "encoder" else 1.0) * (bias_lr_mult if is_bias else 1.0)
        groups.setdefault(key, {"params": [], "lr": lr, "name": key})["params"].append(param)
    return list(groups.values())
