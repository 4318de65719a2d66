"""What every entry point shares: a user's mistake becomes one line on stderr and an exit status."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from omegaconf.errors import MissingMandatoryValue

from deeplab.errors import UserError


class JobFailed(RuntimeError):
    """A job of a multirun that stopped on a user error: the sweep records it and goes on."""


@contextmanager
def one_line_errors() -> Iterator[None]:
    """What the entry points do with a user's mistake: `error: ...` on stderr and exit status 2.
    Inside a multirun the job fails instead (JobFailed), so the other jobs of the sweep still run."""
    try:
        yield
    except MissingMandatoryValue as err:
        _stop(f"{err.full_key} is required; give it on the command line: {err.full_key}=VALUE")
    except UserError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise  # the whole traceback, as Hydra's own switch promises
        _stop(_last_line(str(err)), getattr(err, "exit_code", 2))


def _last_line(message: str) -> str:
    """A DataLoader worker re-raises its error with the worker's traceback in the message; the
    error's own words are its last line, after the type's name."""
    if "Original Traceback" not in message:
        return message
    return message.strip().splitlines()[-1].split(": ", 1)[-1]


def _stop(message: str, exit_code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    if _in_multirun():
        raise JobFailed(message) from None
    sys.exit(exit_code)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


