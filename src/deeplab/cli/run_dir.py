"""The command line's run-directory arguments, rewritten before Hydra reads them: `ckpt_path=RUN_DIR`
resumes that run in its own folder with its stored overrides (train.py), or names its best
checkpoint (eval.py, predict.py, export, inspect_model)."""

import os
import sys
from pathlib import Path

from deeplab.errors import CheckpointError


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

    ours = [a for a in args if a.split("=", 1)[0] not in ("ckpt_path", "hydra.run.dir", "hydra.output_subdir")]
    # a key given again replaces its stored value (listed twice, it would name the run twice over)
    given_again = {a.split("=", 1)[0].lstrip("+~") for a in ours} | {"ckpt_path", "hydra.run.dir"}
    previous = [_stored(a) for a in OmegaConf.load(stored) if a.split("=", 1)[0].lstrip("+~") not in given_again]
    # This resume's config goes beside the run's original one, which stays what a resume reads.
    subdir = f".hydra/resume-{len(list((run_dir / '.hydra').glob('resume-*'))) + 1}"
    return [*previous, *ours, f"ckpt_path={checkpoint}", f"hydra.run.dir={run_dir}", f"hydra.output_subdir={subdir}"]


def _stored(override: str) -> str:
    """A stored override as today's config reads it: runs written while `os` was a config group
    stored it quoted (`os='8'`); it is now a number."""
    key, _, value = override.partition("=")
    return f"os={value.strip(chr(39))}" if key == "os" else override



def run_dir_checkpoint(args: list[str]) -> list[str]:
    """eval.py, predict.py, export and inspect_model take `ckpt_path=RUN_DIR` as train.py does:
    the run's checkpoints/best.ckpt, else its last.ckpt, and say which."""
    result = []
    for arg in args:
        key, eq, value = arg.partition("=")
        if key == "ckpt_path" and eq and Path(os.path.expanduser(value)).is_dir():
            folder = Path(os.path.expanduser(value))
            found = next((folder / "checkpoints" / name for name in ("best.ckpt", "last.ckpt")
                          if (folder / "checkpoints" / name).is_file()), None)
            if found is None:
                raise CheckpointError(f"ckpt_path={value} is a folder without checkpoints/best.ckpt or last.ckpt; "
                                      "give a run directory written by train.py or a .ckpt file")
            print(f"ckpt_path={value}: reading {found}", file=sys.stderr)
            arg = f"ckpt_path={found}"
        result.append(arg)
    return result
