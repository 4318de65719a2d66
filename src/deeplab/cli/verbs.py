"""The user's commands: `python train.py ...` and `deeplab-train ...` (and the same for eval,
predict and the tools) both land here. Each verb names its config in deeplab/conf/ and a task; `launch`
hands the command line to Hydra, which composes the config once, and calls the task; a user's
mistake, wherever it is found, becomes one line. A task imports what it needs when it runs, so
that predict never loads the training stack."""

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from deeplab.cli import CONF_DIR
from deeplab.cli.checks import COMMAND, Command, check_train_config
from deeplab.cli.command_line import prepare
from deeplab.cli.entry import hydra_raises, in_multirun, one_line_errors
from deeplab.log import LOG, setup_console


def launch(config_name: str, task: Callable[[DictConfig], object], train_config: bool = False,
           before: Callable[[list[str]], list[str]] | None = None,
           before_run: Callable[[DictConfig, str, Path | None, bool], None] | None = None,
           release: Callable[[], None] | None = None, on_failure: Callable[[], None] | None = None) -> Command:
    """`before` rewrites the arguments ahead of Hydra (train.py's resume), `before_run` checks the
    composed config's run directory before Hydra makes it (checks.BeforeRun), `on_failure` runs
    when the command fails (a refused resume's records are taken back), `release` when it ends
    however it ends (the run directory's lock); `train_config` runs the train config's checks.
    Returns the command, with its task's result and run directory (for the Python API)."""
    command = Command(config_name, train_config, before_run)
    token = COMMAND.set(command)

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
    def job(cfg: DictConfig):
        setup_console()
        with one_line_errors(job=True):
            notes = check_train_config(cfg) if train_config and in_multirun() else command.notes
            for note in notes:
                LOG.info(note)
            command.run_dir = Path(HydraConfig.get().runtime.output_dir)
            command.result = task(cfg)
            return command.result

    try:
        with one_line_errors():
            args = list(sys.argv[1:])
            if before is not None:
                args = before(args)
            sys.argv[1:] = prepare(args, CONF_DIR, config_name)
            with hydra_raises():
                job()
    except BaseException as stop:
        if on_failure is not None and not (isinstance(stop, SystemExit) and stop.code in (0, None)):
            on_failure()
        raise
    finally:
        COMMAND.reset(token)
        if release is not None:
            release()
    return command


def _imported(target: str) -> Callable:
    """`module:function`, imported when it runs (not when the command line is read)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _verb(config_name: str, target: str, train_config: bool = False, **hooks) -> Callable[[], None]:
    """The command as a console script (`verb()`, which returns nothing: a script's return value is
    its exit status), and as the Python API runs it (`verb.run()`, which returns the Command)."""

    def run() -> Command:
        return launch(config_name, lambda cfg: _imported(target)(cfg), train_config, **hooks)

    def verb() -> None:
        run()

    verb.run = run
    return verb


def _without_hydra(target: str) -> Callable[[], None]:
    def verb() -> None:
        sys.exit(_imported(target)(sys.argv[1:]))

    return verb


def train() -> None:
    run_train()


def run_train() -> Command:
    """train.py's command, returned with its result and run directory (the Python API's train)."""
    from deeplab.training.run_dir import ResumeTrace, RunDirLock, check_fresh_run_dir, check_resume, resume_command_line

    lock, trace = RunDirLock(), ResumeTrace()

    def settle_run_dir(cfg: DictConfig, key: str, target: Path | None, multirun: bool) -> None:
        lock.claim(key, target)  # first: nothing below may touch a directory another command is using
        if not multirun:
            check_resume(cfg, target)
        check_fresh_run_dir(cfg, key, target, multirun)

    def begin(args: list[str]) -> list[str]:
        args = resume_command_line(args)
        trace.begin(args)
        return args

    # a refused resume leaves no trace in the run it was refused for
    return launch("train", lambda cfg: _imported("deeplab.training.run:main")(cfg), train_config=True, before=begin,
                  before_run=settle_run_dir, release=lock.release, on_failure=trace.rollback)


def _fresh_learn_folder(cfg: DictConfig, key: str, target: Path | None, multirun: bool) -> None:
    _imported("deeplab.tools.learn:check_task")(cfg)  # a refusal leaves no run directory
    if target is not None and not multirun:
        _imported("deeplab.tools.learn:check_fresh")(target)  # before Hydra writes its records there


def _check_evaluation(cfg: DictConfig, key: str, target: Path | None, multirun: bool) -> None:
    """eval.py's values and its checkpoint's path, said before its run directory is made."""
    if not multirun:  # a sweep's jobs are checked each with its own values
        _imported("deeplab.schema:validate_evaluate")(cfg)
        _imported("deeplab.builders.checkpoint:check_file")(cfg.ckpt_path)


def _run_dir_checkpoint(args: list[str]) -> list[str]:
    """`ckpt_path=RUN_DIR`: that run's best checkpoint (builders.checkpoint.run_checkpoint), said."""
    result = []
    for arg in args:
        key, eq, value = arg.partition("=")
        found = _imported("deeplab.builders.checkpoint:run_checkpoint")(value) if key == "ckpt_path" and eq else None
        if found is not None:
            print(f"ckpt_path={value}: reading {found}", file=sys.stderr)
            arg = f"ckpt_path={found}"
        result.append(arg)
    return result


# The verbs of pyproject.toml's [project.scripts] and of eval.py, predict.py and tools/*.py.
evaluate = _verb("evaluate", "deeplab.evaluation.evaluate:main", before=_run_dir_checkpoint,
                 before_run=_check_evaluation)
predict = _verb("predict", "deeplab.evaluation.predict:main", before=_run_dir_checkpoint)
export = _verb("export", "deeplab.tools.export:main", before=_run_dir_checkpoint)
inspect_model = _verb("inspect_model", "deeplab.tools.inspect_model:run", before=_run_dir_checkpoint)
learn = _verb("learn", "deeplab.tools.learn:run", True, before_run=_fresh_learn_folder)
bench = _verb("bench", "deeplab.tools.bench:report", True)
show_aug = _verb("show_aug", "deeplab.tools.show_aug:run", True)
bench_loader = _verb("bench_loader", "deeplab.tools.loader_bench:report", True)
check_data = _verb("check_data", "deeplab.tools.check_data:main", True)
prepare_data = _verb("prepare_data", "deeplab.tools.check_data:prepare", True)
complexity = _verb("complexity", "deeplab.tools.complexity:report", True)
memory = _verb("memory", "deeplab.tools.memory:report", True)
gpu_check = _without_hydra("deeplab.tools.gpu_check:main")  # every GPU path and its speed: a fixed plan
compare = _without_hydra("deeplab.tools.compare:main")  # two evaluations' per-class IoUs, a paired bootstrap
report = _without_hydra("deeplab.tools.report:main")  # a sweep's report.md, report.csv and pareto.png again
