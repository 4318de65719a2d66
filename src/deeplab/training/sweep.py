"""A job's place in a sweep, for the dashboard: one W&B group a sweep, one name a job."""

import sys
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser

GROUPS_AS_TAGS = ("data", "backbone", "decoder", "aug", "experiment")
REPEATS = ("seed", "data.fold")  # swept keys that repeat a setting: its runs share a W&B job_type


def job_identity(choices: dict | None, output_stride: int | None = None) -> dict:
    """`group` (the sweep, shared by all its jobs; none for a single run), `name` (the values of
    the swept keys, e.g. `backbone=xception65,os=8`, else all the job's overrides), `job_type`
    (in a sweep, the name without seed and data.fold: the setting its repeats share) and `tags`
    (the chosen config groups and `os=` the output stride). Empty outside Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return {}
    hydra = HydraConfig.get()
    identity = {"tags": [f"{g}={choices[g]}" for g in GROUPS_AS_TAGS if choices and choices.get(g)]
                + ([f"os={output_stride}"] if output_stride is not None else [])}
    swept = swept_keys(sys.argv[1:]) | set(hydra.sweeper.get("params") or {})
    own = [o for o in hydra.overrides.task if o.split("=", 1)[0].lstrip("+~") in swept]
    if own or hydra.job.override_dirname:
        identity["name"] = (",".join(own) if own else hydra.job.override_dirname).replace("'", "")
    if hydra.mode == RunMode.MULTIRUN:
        sweep = Path(hydra.sweep.dir)
        identity["group"] = f"{hydra.job.name}-{sweep.parent.name}-{sweep.name}"
        setting = [o for o in own if o.split("=", 1)[0].lstrip("+~") not in REPEATS]
        identity["job_type"] = ",".join(setting).replace("'", "") or "all"  # W&B shows their mean and spread
    return identity


def swept_keys(args: list[str]) -> set[str]:
    """The keys a sweep varies (`os=8,16`, `optim.lr=range(...)`): what tells its jobs apart."""
    parser, keys = OverridesParser.create(), set()
    for arg in args:
        if "=" in arg and not arg.startswith("-"):
            try:
                override = parser.parse_override(arg)
            except Exception:  # Hydra reports unparsable arguments itself
                continue
            if override.is_sweep_override():
                keys.add(override.key_or_group)
    return keys


def sweep_dir(run_dir: str) -> str | None:
    """The directory of the sweep a run belongs to, whose other subfolders are its sibling jobs:
    the multirun's, or, for one job of a sweep started on its own (resumed with ckpt_path=, or a
    DDP rank the launcher started), the folder above it where Hydra wrote multirun.yaml. None for
    a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return str(HydraConfig.get().sweep.dir)
    parent = Path(run_dir).resolve().parent
    return str(parent) if (parent / "multirun.yaml").is_file() else None
