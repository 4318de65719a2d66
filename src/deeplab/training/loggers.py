"""Loggers whose set-up needs a decision: W&B online or offline."""

import netrc
import os
import uuid
from pathlib import Path
from urllib.parse import urlparse

from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from deeplab.log import LOG

MODES = ("auto", "online", "offline")
_say = LOG.info


def wandb_credentials_configured() -> bool:
    """True when W&B could log in without asking: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_logger(project: str = "deeplab", save_dir: str = ".", mode: str = "auto", entity: str | None = None,
                 name: str | None = None, group: str | None = None, tags=(), log_model: bool = False,
                 init_timeout: float = 60, job_type: str | None = None) -> WandbLogger:
    """A WandbLogger that never prompts and never fails a run for want of a network: `auto` logs
    online when credentials are configured; a server that cannot be reached leaves the run
    logging offline, said on the console, to be uploaded later with `wandb sync`."""
    if mode not in MODES:
        raise ValueError(f"logger.wandb.mode={mode!r} is not allowed; allowed: {', '.join(MODES)}")
    os.environ.setdefault("WANDB_CONSOLE", "off")  # the terminal output stays ours
    run_id = _run_id(Path(save_dir))
    sync_hint = f"upload later with `wandb sync {save_dir}/wandb/offline-run-*`"

    def make(offline: bool) -> WandbLogger:
        if offline and log_model:  # Lightning uploads checkpoints only from online runs
            _say("W&B: logger.wandb.log_model=true has no effect offline; the checkpoints stay in checkpoints/")
        return WandbLogger(project=project, entity=entity, name=name, group=group, tags=list(tags), job_type=job_type,
                           save_dir=save_dir, offline=offline, log_model=log_model and not offline,
                           mode="offline" if offline else "online", id=run_id, resume="allow",
                           settings={"silent": True, "init_timeout": init_timeout})

    if mode == "offline" or (mode == "auto" and not wandb_credentials_configured()):
        reason = "logger.wandb.mode=offline" if mode == "offline" else "no credentials configured"
        _say(f"W&B: offline ({reason}); {sync_hint}")
        return make(offline=True)
    logger = make(offline=False)
    try:
        _ = logger.experiment  # starts the run now, so that a network failure is handled here
    except Exception as err:  # wandb raises several types for an unreachable or refusing server
        import wandb

        wandb.teardown()  # forget the failed online session before starting an offline one
        reason = " ".join(str(err).split())[:200]
        _say(f"W&B: could not start an online run ({reason}); logging offline instead; {sync_hint}")
        return make(offline=True)
    _say(f"W&B: online, project {project}")
    return logger


def _run_id(save_dir: Path) -> str:
    """The W&B run id of this run directory, kept in `wandb_run_id` there: a resumed run (same
    directory) logs on into the same W&B run."""
    path = save_dir / "wandb_run_id"
    if path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:8]
    if rank_zero_only.rank == 0:
        save_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id + "\n")
    return run_id
