"""Loggers whose set-up needs a decision: W&B online or offline."""

import netrc
import os
from urllib.parse import urlparse

from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_info

MODES = ("auto", "online", "offline")


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
                 name: str | None = None, group: str | None = None, tags=(), log_model: bool = False) -> WandbLogger:
    """A WandbLogger that never prompts: `auto` logs online only when credentials are configured."""
    if mode not in MODES:
        raise ValueError(f"logger.wandb.mode={mode!r} is not allowed; allowed: {', '.join(MODES)}")
    offline = mode == "offline" or (mode == "auto" and not wandb_credentials_configured())
    os.environ.setdefault("WANDB_CONSOLE", "off")  # keep the terminal output ours
    if offline:
        rank_zero_info(f"W&B: offline (no credentials configured); upload later with "
                       f"`wandb sync {save_dir}/wandb/offline-run-*`")
    else:
        rank_zero_info(f"W&B: online, project {project}")
    return WandbLogger(project=project, entity=entity, name=name, group=group, tags=list(tags), save_dir=save_dir,
                       offline=offline, log_model=log_model and not offline, anonymous=False,
                       settings={"silent": True})
