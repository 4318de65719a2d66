"""train.py's run directory, settled before Hydra starts: a resume continues in the run's own
folder with its stored overrides, and a fresh run never mixes with an earlier run's files."""

import os
import shutil
from pathlib import Path

from deeplab.cli.command_line import CommandLine, output_dir
from deeplab.errors import CheckpointError
from deeplab.log import LOG


def resume_command_line(args: list[str]) -> list[str]:
    """`ckpt_path=RUN_DIR` or `ckpt_path=RUN_DIR/checkpoints/X.ckpt` continues that run where it
    stands: its stored overrides first (the command line's own come after and win, e.g. a longer
    trainer.max_steps), `hydra.run.dir=RUN_DIR` so the same folder, logs and W&B run go on, and
    ckpt_path pointing at the file. `ckpt_path=last` with `hydra.run.dir=RUN_DIR` does the same."""
    given = {arg.split("=", 1)[0]: arg.split("=", 1)[1] for arg in args if "=" in arg and not arg.startswith("-")}
    value = given.get("ckpt_path")
    if value in (None, "null") or "-m" in args or "--multirun" in args:
        return args
    if value == "last":
        if "hydra.run.dir" not in given:
            return args  # the run's own folder is the new one: train() says there is nothing to resume
        run_dir = Path(given["hydra.run.dir"])
        checkpoint = run_dir / "checkpoints" / "last.ckpt"
    elif Path(value).is_dir():
        run_dir, checkpoint = Path(value), Path(value) / "checkpoints" / "last.ckpt"
        if not checkpoint.exists():
            raise CheckpointError(f"ckpt_path={value} is a folder without checkpoints/last.ckpt; give a run "
                                  "directory written by train.py or a .ckpt file")
    else:
        checkpoint = Path(value)
        run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None
    stored = run_dir / ".hydra" / "overrides.yaml" if run_dir is not None else None
    if stored is None or not stored.is_file():
        return args  # a checkpoint from elsewhere: a new run dir, the config of this command line
    from omegaconf import OmegaConf

    previous = [a for a in OmegaConf.load(stored) if a.split("=", 1)[0] not in ("ckpt_path", "hydra.run.dir")]
    ours = [a for a in args if a.split("=", 1)[0] not in ("ckpt_path", "hydra.run.dir", "hydra.output_subdir")]
    # This resume's config goes beside the run's original one, which stays what a resume reads.
    subdir = f".hydra/resume-{len(list((run_dir / '.hydra').glob('resume-*'))) + 1}"
    return [*previous, *ours, f"ckpt_path={checkpoint}", f"hydra.run.dir={run_dir}", f"hydra.output_subdir={subdir}"]


# What a training run writes into its directory; overwrite=true removes these and nothing else.
RUN_FILES = (".hydra", "checkpoints", "csv", "wandb", "stage2", "summary.json", "validation.jsonl", "train.log")


def check_fresh_run_dir(args: list[str], conf_dir: Path) -> None:
    """A fresh run (or sweep) may not start in a directory that holds another run's checkpoints:
    the two would mix (last.ckpt of one beside last-v1.ckpt of the other, one summary.json).
    A resume from a checkpoint in that directory is no fresh run; overwrite=true replaces the
    earlier run's files before Hydra writes any."""
    line = CommandLine.parse(args, "train")
    if not line.runs_job:
        return
    key, target, cfg = output_dir(line, conf_dir)
    if target is None or not target.is_dir():
        return
    runs = [d for d in target.iterdir() if d.is_dir()] if line.multirun else [target]
    used = [run for run in runs if any((run / "checkpoints").glob("*.ckpt"))]
    if not used:
        return
    ckpt_path = cfg.get("ckpt_path")
    if not line.multirun and ckpt_path not in (None, "last") and Path(ckpt_path).resolve().parent == (
            target / "checkpoints").resolve():
        return  # continuing this very run
    if int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0 or list(target.glob("hpc_ckpt_*.ckpt")):
        return  # a requeued SLURM job: the same command again, continued by resolve_ckpt_path or Lightning
    if not cfg.get("overwrite", False):
        if line.multirun:
            raise CheckpointError(f"{key}={target} holds the checkpoints of an earlier sweep ({len(used)} runs); "
                                  f"start this one in another {key}, or replace that one with overwrite=true")
        raise CheckpointError(f"{key}={target} holds another run's checkpoints; continue that run with "
                              f"ckpt_path={target}, start this one in another {key}, or replace that one with "
                              "overwrite=true")
    for run in runs:
        for name in RUN_FILES:
            path = run / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    LOG.info(f"overwrite=true: removed the earlier {'sweep' if line.multirun else 'run'}'s files from {target}")
