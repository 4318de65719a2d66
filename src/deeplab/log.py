"""The project's console: one logger, `deeplab`, printed by the process of rank zero only. Under
train.py Hydra's job logging sends it to the console and to the run's train.log; elsewhere it
prints plain lines to stdout."""

import logging
import os
import sys

LOG = logging.getLogger("deeplab")


def launch_rank() -> int:
    """0 for the process of global rank zero as its launcher set it up (torchrun, SLURM, Lightning,
    the local DDP sweep, one node of several started by hand), else a positive number."""
    # Global ranks, where a launcher gives them before any process group exists.
    for key in ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if os.environ.get(key):
            return int(os.environ[key])
    # Else a local rank on a node (NODE_RANK as Lightning reads it, GROUP_RANK as torchrun sets it).
    node = int(os.environ.get("NODE_RANK") or os.environ.get("GROUP_RANK") or 0)
    return int(os.environ.get("LOCAL_RANK") or 0) + node


class _RankZero(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return launch_rank() == 0


class _Stdout(logging.StreamHandler):
    """Writes to whatever sys.stdout is when a line is logged (pytest swaps it per test)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _):
        pass


def setup_console() -> None:
    """Called once a process's logging is configured: where no console handler is on the root
    logger (the tools turn Hydra's job logging off) the project's lines still print, plainly."""
    LOG.setLevel(logging.INFO)
    if not any(isinstance(f, _RankZero) for f in LOG.filters):
        LOG.addFilter(_RankZero())
    own = [h for h in LOG.handlers if isinstance(h, _Stdout)]
    console = any(type(h) is logging.StreamHandler for h in logging.getLogger().handlers)
    if console:  # Hydra's job logging (train.py): its console and the run's log file
        for handler in own:
            LOG.removeHandler(handler)
        LOG.propagate = True
    elif not own:
        handler = _Stdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        LOG.addHandler(handler)
        LOG.propagate = False


setup_console()  # the project used as a library prints its lines too; entry points redo this under Hydra
