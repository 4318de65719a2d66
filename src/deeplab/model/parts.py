"""The network's parts by name, for fine-tuning schedules: `encoder`, `aspp`, `decoder`, `head`,
and inside the encoder its stages (timm's feature_info), its blocks by path, Xception's flows."""

from torch import nn

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
