"""Staged fine-tuning: which parts of the network train when, at what learning rate, and whether
batch norm in the frozen parts keeps its statistics, as a Lightning BaseFinetuning callback."""

from collections.abc import Sequence

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BaseFinetuning
from pytorch_lightning.utilities import rank_zero_info
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

PARTS = {"encoder": "encoder", "aspp": "aspp", "decoder": "decoder", "head": "classifier"}


def resolve_group(model: nn.Module, name: str) -> nn.Module:
    """`encoder`, `aspp`, `decoder`, `head`, or a submodule of the encoder by its path:
    `encoder.layer4` (timm encoders are reached through smp's `encoder.model`) or by stage index,
    `encoder.4` (the modules that produce the encoder's i-th feature, 0 = stride 2), Xception's
    `encoder.entry_flow` / `middle_flow` / `exit_flow`, and `encoder.layer3+` (that block and
    every later one), `encoder.last_stage` (the deepest stage of any encoder)."""
    part, _, rest = name.partition(".")
    if part not in PARTS:
        raise ValueError(f"finetune group {name!r} is not allowed; allowed: {', '.join(PARTS)} or encoder.<block>")
    module = getattr(model, PARTS[part], None)
    if module is None:
        raise ValueError(f"finetune group {name!r}: this model has no {part} (decoder=deeplabv3 has none)")
    if not rest:
        return module
    children = dict(getattr(module, "model", module).named_children())
    if rest.endswith("+"):  # this block and all after it: what stays trainable in the Keras recipe
        start = _block(module, rest[:-1], name, children)
        names = list(children)
        first = next((i for i, n in enumerate(names) if children[n] is start), None)
        if first is None:
            raise ValueError(f"finetune group {name!r}: {rest[:-1]!r} is not a top-level encoder block; "
                             f"its blocks: {', '.join(names)}")
        return nn.ModuleList([children[n] for n in names[first:]])
    if rest == "last_stage":  # the deepest stage, whatever the encoder calls it
        if getattr(module, "model", None) is not None and hasattr(module.model, "feature_info"):
            return encoder_stages(module)[-1]
        if hasattr(module, "get_stages"):  # smp's own encoders: their dilatable stages by stride
            stages = module.get_stages()
            return nn.ModuleList(stages[max(stages)])
    if rest in XCEPTION_FLOWS and all(c in children for c in XCEPTION_FLOWS[rest]):
        return nn.ModuleList([children[c] for c in XCEPTION_FLOWS[rest]])
    if rest.isdigit():
        stages = encoder_stages(module)
        if int(rest) >= len(stages):
            raise ValueError(f"finetune group {name!r}: the encoder has stages 0..{len(stages) - 1}")
        return stages[int(rest)]
    return _block(module, rest, name, children)


def _block(module: nn.Module, path: str, name: str, children: dict) -> nn.Module:
    for root in (module, getattr(module, "model", None)):
        for candidate in (path, path.replace(".", "_")):  # timm flattens blocks.19 to blocks_19
            if root is not None:
                try:
                    return root.get_submodule(candidate)
                except AttributeError:
                    pass
    raise ValueError(f"finetune group {name!r}: the encoder has no block {path!r}; its blocks: "
                     f"{', '.join(children)}")


def _owning_child(feature: str, children: list[str]) -> str:
    """The encoder child (timm flattens `blocks.19` to `blocks_19`) that holds a feature module."""
    parts = feature.split(".")
    for k in range(len(parts), 0, -1):
        if "_".join(parts[:k]) in children:
            return "_".join(parts[:k])
    raise ValueError(f"encoder feature {feature!r} is in none of its blocks")


def encoder_stages(encoder: nn.Module) -> list[nn.ModuleList]:
    """The encoder's blocks grouped by the feature they lead to (timm's feature_info): stage i
    ends with the block that produces feature i."""
    model = getattr(encoder, "model", None)
    info = getattr(model, "feature_info", None)
    if info is None:
        raise ValueError("finetune groups by stage index need a timm encoder (tu-...); use block names instead")
    children = dict(model.named_children())
    ends = {_owning_child(name, list(children)) for name in info.module_name()}
    stages, current = [], []
    for name, child in children.items():
        current.append(child)
        if name in ends:
            stages.append(nn.ModuleList(current))
            current = []
    return stages


# The flows of the modified aligned Xception (paper Fig. 4) in timm's xception65 blocks.
XCEPTION_FLOWS = {"entry_flow": ["stem_0", "stem_1", "blocks_0", "blocks_1", "blocks_2"],
                  "middle_flow": [f"blocks_{i}" for i in range(3, 19)],
                  "exit_flow": ["blocks_19", "blocks_20"]}


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
        rank_zero_info(f"finetune: stage {self.applied} at epoch {pl_module.trainer.current_epoch} step "
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
