"""The Python API: `deeplab.train([...])` and `deeplab.evaluate(ckpt)` run exactly what train.py
and eval.py run (the same composition by Hydra, the same checks), from a notebook, a script or a
service. A user's mistake is raised as `deeplab.errors.UserError` with the line the command would
print; the process is left as it was (arguments, logging handlers)."""

import json
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from deeplab.errors import UserError

Overrides = Sequence[str] | Mapping[str, object] | None


@dataclass
class RunResult:
    """What a training run left: its directory, best validation mIoU, checkpoints and summary.json."""

    run_dir: Path
    miou_best: float | None
    best_ckpt: Path | None
    last_ckpt: Path | None
    summary: dict = field(repr=False)


def train(overrides: Overrides = None, config_dir: str | Path | None = None) -> RunResult:
    """Runs `python train.py OVERRIDES` (a list of `key=value`, or a mapping) and returns its result;
    `config_dir` adds a folder of the user's own configs (train.py's `--config-dir`)."""
    from deeplab.cli.verbs import run_train

    with _as_command("deeplab-train", overrides, config_dir):
        command = run_train()
    summary = json.loads((command.run_dir / "summary.json").read_text())
    checkpoints = command.run_dir / "checkpoints"
    best = summary.get("best_ckpt")
    return RunResult(command.run_dir, summary.get("val/mIoU_best"), Path(best) if best else None,
                     checkpoints / "last.ckpt" if (checkpoints / "last.ckpt").is_file() else None, summary)


def evaluate(ckpt: str | Path, overrides: Overrides = None, config_dir: str | Path | None = None) -> dict:
    """Runs `python eval.py ckpt_path=CKPT OVERRIDES` (a checkpoint or a run directory) and returns
    its metrics.json."""
    from deeplab.cli.verbs import evaluate as evaluate_verb

    with _as_command("deeplab-eval", [f"ckpt_path={ckpt}", *_arguments(overrides)], config_dir):
        command = evaluate_verb.run()
    return json.loads((command.run_dir / "metrics.json").read_text())


@contextmanager
def _as_command(name: str, overrides: Overrides | list[str], config_dir: str | Path | None) -> Iterator[None]:
    """sys.argv as the command would have it while it runs, mistakes raised; afterwards the root
    logger's own handlers again, those of the run (its log file, its console) closed, and
    matplotlib's backend as it was."""
    from deeplab.cli.entry import RAISES

    args = _arguments(overrides)
    flags = [a for a in args if a.startswith("-")]
    if flags:
        raise UserError(f"{flags[0]}: the Python API takes overrides (key=value) only; run sweeps and Hydra's "
                        "flags from the command line")
    saved_argv, root = sys.argv, logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    backend = sys.modules["matplotlib"].get_backend() if "matplotlib" in sys.modules else None
    sys.argv = [name, *(["--config-dir", str(config_dir)] if config_dir is not None else []), *args]
    token = RAISES.set(True)
    try:
        yield
    finally:
        RAISES.reset(token)
        sys.argv = saved_argv
        for handler in root.handlers:
            if handler not in saved_handlers:
                handler.close()
        root.handlers[:] = saved_handlers  # Hydra's logging setup replaced them for the run
        root.setLevel(saved_level)
        if backend is not None and sys.modules["matplotlib"].get_backend() != backend:
            import matplotlib.pyplot as plt  # the run's plots switch to Agg; a notebook draws inline again

            plt.switch_backend(backend)


def _arguments(overrides: Overrides) -> list[str]:
    """`key=value` strings, from a list of them or from a mapping (nested mappings give dotted keys)."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        raise UserError(f"overrides={overrides!r}: give a list of key=value strings or a mapping, not one string")
    if isinstance(overrides, Mapping):
        return [f"{key}={_value(value)}" for key, value in _flat(overrides)]
    return [str(item) for item in overrides]


def _flat(mapping: Mapping, prefix: str = "") -> Iterator[tuple[str, object]]:
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value and all(isinstance(k, str) for k in value):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _value(value) -> str:
    """A Python value in Hydra's override grammar (strings quoted, so any character is kept)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_value(k) if not isinstance(k, str) else k}:{_value(v)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"
