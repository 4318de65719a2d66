"""A training run's directory, checked on the composed config before Hydra makes it: one command
at a time in it (RunDirLock), a fresh run never mixed with an earlier run's files, a resume of
another network refused, and a refused resume's records taken back (ResumeTrace); and train.py's
`ckpt_path=RUN_DIR`, which continues that run in its own folder (resume_command_line)."""

import os
import shutil
from pathlib import Path

from deeplab.builders.pretrained import is_pretrained
from deeplab.errors import CheckpointError
from deeplab.log import LOG

# What a training run writes into its directory; overwrite=true removes these and nothing else.
RUN_FILES = (".hydra", "checkpoints", "csv", "wandb", "stage2", "summary.json", "validation.jsonl", "train.log")


def check_fresh_run_dir(cfg, key: str, target: Path | None, multirun: bool) -> None:
    """A fresh run (or sweep) may not start in a directory that holds another run's checkpoints:
    the two would mix (last.ckpt of one beside last-v1.ckpt of the other, one summary.json).
    A resume from a checkpoint in that directory is no fresh run; overwrite=true replaces the
    earlier run's files before Hydra writes any."""
    if target is None or not target.is_dir():
        return
    runs = [d for d in target.iterdir() if d.is_dir()] if multirun else [target]
    used = [run for run in runs if any((run / "checkpoints").glob("*.ckpt"))]
    if not used:
        return
    ckpt_path = cfg.get("ckpt_path")
    if not multirun and ckpt_path not in (None, "last") and Path(ckpt_path).resolve().parent == (
            target / "checkpoints").resolve():
        return  # continuing this very run
    if int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0 or list(target.glob("hpc_ckpt_*.ckpt")):
        return  # a requeued SLURM job: the same command again, continued by resolve_ckpt_path or Lightning
    if not cfg.get("overwrite", False):
        if multirun:
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
    LOG.info(f"overwrite=true: removed the earlier {'sweep' if multirun else 'run'}'s files from {target}")


# Ranks that a launcher or Lightning started besides rank 0: they join rank 0's run directory.
RANK_VARIABLES = ("LOCAL_RANK", "RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
LOCK_NAME = ".train.lock"


class RunDirLock:
    """An exclusive claim on a run (or sweep) directory for the life of one command: a second
    command into the same directory is refused in one line instead of mixing its checkpoints and
    logs with the first. flock, so a crashed or killed run leaves nothing held."""

    def __init__(self):
        self.handle = None
        self.path: Path | None = None
        self.made: list[Path] = []  # folders this claim created, removed again if it leaves them empty

    def claim(self, key: str, target: Path | None) -> None:
        import fcntl

        if target is None or any(os.environ.get(k, "0") not in ("", "0") for k in RANK_VARIABLES):
            return
        missing = [p for p in (target, *target.parents) if not p.exists()]
        target.mkdir(parents=True, exist_ok=True)
        self.made = missing
        self.path = target / LOCK_NAME
        self.handle = open(self.path, "a")  # noqa: SIM115  (held until release)
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            self.handle = self.path = None
            raise CheckpointError(f"{key}={target} is in use by another command running now (its {LOCK_NAME} is "
                                  f"held); wait for it to end, or start this one in another {key}") from None

    def release(self) -> None:
        if self.handle is None:
            return
        self.path.unlink(missing_ok=True)  # ours while held: no stale file for the next command
        self.handle.close()
        self.handle = None
        for folder in self.made:  # a refused command leaves no empty folders behind
            try:
                folder.rmdir()
            except OSError:
                break


def check_resume(cfg, target: Path | None) -> None:
    """Before Hydra writes anything: the resume checks of training.resume on the composed config
    (another network is refused; a finished run is a one-line answer that changes no file)."""
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path in (None, "last") or not Path(ckpt_path).is_file():
        return  # no resume, or one that training itself refuses in one line
    from deeplab.training.resume import check_resume_from

    check_resume_from(ckpt_path, cfg, target)


class ResumeTrace:
    """What a resume adds to a run directory before its job runs (Hydra's `.hydra/resume-N` and
    lines in train.log), taken back when the command is refused having changed nothing else."""

    def __init__(self):
        self.run_dir: Path | None = None

    def begin(self, args: list[str]) -> None:
        given = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
        subdir = given.get("hydra.output_subdir", "")
        if not subdir.startswith(".hydra/resume-") or "hydra.run.dir" not in given:
            return
        self.run_dir, self.subdir = Path(given["hydra.run.dir"]), Path(given["hydra.run.dir"]) / subdir
        log = self.run_dir / "train.log"
        self.log_size = log.stat().st_size if log.is_file() else None
        self.before = self._files()

    def _files(self) -> dict:
        log = self.run_dir / "train.log"
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in self.run_dir.rglob("*")
                if p.is_file() and p != log and self.subdir not in p.parents and p.name != LOCK_NAME}

    def rollback(self) -> None:
        if self.run_dir is None or self._files() != self.before:
            return  # training ran (or wrote something): its log stays with it
        shutil.rmtree(self.subdir, ignore_errors=True)
        log = self.run_dir / "train.log"
        if self.log_size is None:
            log.unlink(missing_ok=True)
        elif log.is_file():
            os.truncate(log, self.log_size)


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
        if not checkpoint.exists() and is_pretrained(value):  # weights alone: no optimizer or step to resume
            raise CheckpointError(f"ckpt_path={value} is a model folder, not a run to resume; start a new run from "
                                  f"its weights with model.init_from={value}")
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
