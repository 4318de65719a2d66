"""What every entry point shares: a user's mistake becomes one line on stderr and an exit status.

The mistakes come from two places: the project's own checks (UserError, already one line) and
the libraries that read the command line and the config before them: Hydra's override parser
and composition, OmegaConf's interpolation, YAML files, Lightning's Trainer. Those raise their
own exception types with multi-line messages; `external_message` turns each kind into one line
naming the key, file or value, so that no mistake of the user's reaches a traceback. The whole
traceback is still there with HYDRA_FULL_ERROR=1."""

import difflib
import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from deeplab.errors import UserError, required


class JobFailed(RuntimeError):
    """A job of a multirun that stopped on a user error: the sweep records it and goes on."""


# Packages whose errors, raised while they read the user's command line or config, are the user's mistake.
LIBRARIES = ("hydra", "omegaconf", "yaml", "pytorch_lightning", "lightning_fabric")


class Carried(BaseException):
    """An error raised in a Hydra callback, carried past Hydra's wrapper (which turns any
    Exception there into a warning) to one_line_errors."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


@contextmanager
def one_line_errors(job: bool = False) -> Iterator[None]:
    """What the entry points do with a user's mistake: `error: ...` on stderr and exit status 2.
    In a job of a multirun (`job`) the job fails instead (JobFailed), so the other jobs of the
    sweep still run."""
    try:
        try:
            yield
        except Carried as carried:
            raise carried.error from None
    except UserError as err:
        if full_trace() or RAISES.get() and "\n" not in str(err):
            raise  # the whole traceback, as Hydra's own switch promises; or the API's caller gets it
        if RAISES.get():
            raise UserError(_last_line(str(err))) from err
        _stop(_last_line(str(err)), getattr(err, "exit_code", 2), job=job)
    except Exception as err:
        message = external_message(err)
        if message is None or full_trace():
            raise
        if RAISES.get():
            raise UserError(message) from err
        _stop(message, job=job)


# Set by the Python API (deeplab.api): a user's mistake is raised as UserError with the line the
# command would print, instead of printed with an exit.
RAISES: ContextVar[bool] = ContextVar("deeplab_raises", default=False)


def full_trace() -> bool:
    """The user's HYDRA_FULL_ERROR=1 (hydra_raises sets Hydra's own for its run)."""
    return os.environ.get(USER_FULL_ERROR, os.environ.get("HYDRA_FULL_ERROR")) == "1"


USER_FULL_ERROR = "DEEPLAB_USER_HYDRA_FULL_ERROR"  # the user's setting, kept for the processes a run starts


@contextmanager
def hydra_raises() -> Iterator[None]:
    """Hydra's errors raised to one_line_errors instead of printed by Hydra (its documented
    HYDRA_FULL_ERROR=1), and its argument parser's refusals as one line instead of usage lines."""
    import argparse

    before, error = os.environ.get("HYDRA_FULL_ERROR"), argparse.ArgumentParser.error
    kept = os.environ.get(USER_FULL_ERROR)
    os.environ[USER_FULL_ERROR] = kept if kept is not None else before or "0"

    def refuse(parser, message: str):
        raise UserError(f"{message}; see --help")

    os.environ["HYDRA_FULL_ERROR"] = "1"
    argparse.ArgumentParser.error = refuse
    try:
        yield
    finally:
        argparse.ArgumentParser.error = error
        if kept is None:
            os.environ.pop(USER_FULL_ERROR, None)
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before


def external_message(err: BaseException) -> str | None:
    """One line for an error a library raised on the user's input; None for anything else (a bug,
    which keeps its traceback)."""
    from hydra.errors import HydraException, InstantiationException, MissingConfigException, OverrideParseException
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException
    from yaml import YAMLError

    if isinstance(err, InstantiationException):
        cause = err.__cause__
        target = re.search(r"target '([^']+)'", str(err))
        where = f"{_full_key(str(err))}: " if _full_key(str(err)) else ""
        if cause is not None and _raised_in(cause, LIBRARIES):
            inner = external_message(cause) or _first_line(cause)
        else:
            inner = _first_line(cause) if cause is not None else _first_line(err)
        return f"{where}{target.group(1) if target else 'the target'} refused its arguments: {_trainer_keys(inner)}"
    if isinstance(err, MissingConfigException) and err.options is not None and "/" in (err.missing_cfg_file or ""):
        group, _, value = err.missing_cfg_file.rpartition("/")
        options = sorted(err.options)
        return f"{group}={value} is not allowed; allowed: {', '.join(options)}{suggest(value, options)}"
    unknown = re.match(r"Could not override '([^']+)'", str(err)) if isinstance(err, HydraException) else None
    if unknown:
        from deeplab.cli.checks import COMMAND
        from deeplab.cli.command_line import unknown_key

        return unknown_key(unknown.group(1), getattr(COMMAND.get(), "config_name", None))
    if isinstance(err, ValueError) and _raised_in(err, ("hydra",)):  # Hydra's refusals of flags and overrides
        return _first_line(err)
    if isinstance(err, OverrideParseException):
        return f"{_first_line(err)}; quote a value that holds special characters: key='value'"
    if isinstance(err, YAMLError):
        return _yaml_line(err)
    if isinstance(err, HydraException):
        cause = err.__cause__
        if isinstance(cause, YAMLError):
            return _yaml_line(cause)
        return " ".join(str(err).split("\n")[:2]).strip()
    if isinstance(err, MissingMandatoryValue):
        return str(required(err.full_key))
    if isinstance(err, OmegaConfBaseException):
        key = getattr(err, "full_key", None)
        message = getattr(err, "msg", None) or _first_line(err)
        return f"{key}: {message}" if key else message
    from pytorch_lightning.utilities.exceptions import MisconfigurationException

    if isinstance(err, MisconfigurationException) or isinstance(err, ValueError | TypeError | RuntimeError) and \
            _raised_in(err, ("pytorch_lightning", "lightning_fabric")):
        return f"Lightning refused the trainer settings: {_trainer_keys(_first_line(err))}"
    return None


def suggest(value: str, allowed) -> str:
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _full_key(message: str) -> str | None:
    found = re.search(r"full_key: (\S+)", message)
    return found.group(1) if found else None


def _trainer_keys(message: str) -> str:
    """Lightning names its arguments in backticks (`val_check_interval`); the user set them as
    trainer.<name>. Lightning's advice after the first sentence is about its own API: cut."""
    from inspect import signature

    from pytorch_lightning import Trainer

    names = set(signature(Trainer.__init__).parameters)
    message = re.sub(r"`(\w+)`", lambda m: f"trainer.{m.group(1)}" if m.group(1) in names else m.group(1), message)
    return re.split(r"(?<=[.!)]) (?=[A-Z])", message.strip())[0]


def _yaml_line(err) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or _first_line(err)
    if mark is None:
        return f"a YAML file does not parse: {problem}"
    return f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}: not valid YAML ({problem})"


def _raised_in(err: BaseException, packages: tuple[str, ...]) -> bool:
    """Whether the innermost frame that raised `err` is in one of these packages."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return False
    path = frames[-1].filename.replace("\\", "/")
    return any(f"/{package}/" in path for package in packages)


def _last_line(message: str) -> str:
    """A DataLoader worker re-raises its error with the worker's traceback in the message; the
    error's own words are its last line, after the type's name."""
    if "Original Traceback" not in message:
        return message
    return message.strip().splitlines()[-1].split(": ", 1)[-1]


def _stop(message: str, exit_code: int = 2, job: bool = False) -> None:
    if exit_code == 0:  # NothingToDo: not an error, and nothing failed
        print(message)
        sys.exit(0)
    print(f"error: {message}", file=sys.stderr)
    if job and in_multirun():
        raise JobFailed(message) from None
    sys.exit(exit_code)


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
