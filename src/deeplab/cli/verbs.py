"""The user's commands: `python train.py ...` and `deeplab-train ...` (and the same for eval,
predict and the tools) both land here. Each verb names its config in conf/ and a task; `launch`
checks the command line, lets Hydra compose the config and calls the task, turning a user's
mistake into one line. A task imports what it needs when it runs, so that predict never loads
the training stack."""

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from deeplab.cli.command_line import check_command_line, check_train_config
from deeplab.cli.entry import one_line_errors
from deeplab.log import LOG, setup_console

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"  # the checkout's conf/ (an editable install)


def launch(config_name: str, task: Callable[[DictConfig], object], train_config: bool = False,
           before: Callable[[list[str]], list[str]] | None = None,
           after: Callable[[list[str]], None] | None = None, release: Callable[[], None] | None = None,
           on_failure: Callable[[], None] | None = None) -> None:
    """`before` rewrites the arguments ahead of the checks (train.py's resume), `after` checks
    the checked ones (train.py's run directory), `on_failure` runs when the job fails (a refused
    resume's records are taken back), `release` when the command ends however it ends (the run
    directory's lock); `train_config` runs the train config's checks and prints their notes."""
    try:
        _launch(config_name, task, train_config, before, after, on_failure)
    finally:
        if release is not None:
            release()


def _launch(config_name: str, task: Callable[[DictConfig], object], train_config: bool,
            before: Callable[[list[str]], list[str]] | None, after: Callable[[list[str]], None] | None,
            on_failure: Callable[[], None] | None) -> None:
    with one_line_errors():
        args = list(sys.argv[1:])
        if before is not None:
            args = before(args)
        args = check_command_line(args, CONF_DIR, config_name)
        if after is not None:
            after(args)
    sys.argv[1:] = args

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
    def main(cfg: DictConfig):
        setup_console()
        with one_line_errors():
            try:
                if train_config:
                    for note in check_train_config(cfg, CONF_DIR):
                        LOG.info(note)
                return task(cfg)
            except BaseException:
                if on_failure is not None:
                    on_failure()
                raise

    main()


def _imported(target: str) -> Callable[[DictConfig], object]:
    """The task `module:function`, imported when it runs (not when the command line is checked)."""

    def task(cfg: DictConfig):
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)(cfg)

    return task


def _train(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from deeplab.training.run import train as run

    return run(cfg, choices=dict(HydraConfig.get().runtime.choices))  # the value an Optuna sweep optimises


def train() -> None:
    from deeplab.cli.run_dir import ResumeTrace, RunDirLock, check_fresh_run_dir, check_resume, resume_command_line

    lock, trace = RunDirLock(), ResumeTrace()

    def settle_run_dir(args: list[str]) -> None:
        trace.begin(args)
        lock.claim(args, CONF_DIR)  # first: nothing below may touch a directory another command is using
        check_resume(args, CONF_DIR)
        check_fresh_run_dir(args, CONF_DIR)

    # a refused resume leaves no trace in the run it was refused for
    launch("train", _train, train_config=True, before=resume_command_line, after=settle_run_dir,
           release=lock.release, on_failure=trace.rollback)


def _run_dir_checkpoint(args: list[str]) -> list[str]:
    from deeplab.cli.run_dir import run_dir_checkpoint

    return run_dir_checkpoint(args)


def _evaluate(cfg: DictConfig) -> float:
    from deeplab.evaluation.evaluate import evaluate

    return evaluate(cfg)["mIoU"]


def evaluate() -> None:
    launch("evaluate", _evaluate, before=_run_dir_checkpoint)


def _predict(cfg: DictConfig) -> None:
    from deeplab.evaluation.predict import predict

    if predict(cfg):
        sys.exit(1)  # the readable images are done; the others are named above


def predict() -> None:
    launch("predict", _predict, before=_run_dir_checkpoint)


def _export(cfg: DictConfig) -> None:
    import json

    from deeplab.tools.export import run

    result = run(cfg)
    print(f"wrote {result['onnx']} ({result['bytes'] / 1e6:.1f} MB, output stride {result['output_stride']}); "
          f"onnxruntime matches PyTorch within {result['max_abs_diff']:.2e} (tolerance {result['tolerance']})")
    print(json.dumps(result))


def export() -> None:
    launch("export", _export, before=_run_dir_checkpoint)


def bench() -> None:
    launch("bench", _imported("deeplab.tools.bench:report"), train_config=True)


def learn() -> None:
    def fresh_folder(args: list[str]) -> None:
        from deeplab.cli.command_line import CommandLine, output_dir
        from deeplab.tools.learn import check_fresh

        line = CommandLine.parse(args, "learn")
        target = output_dir(line, CONF_DIR)[1] if line.runs_job and not line.multirun else None
        if target is not None:
            check_fresh(target)  # before Hydra writes its records there

    launch("learn", _imported("deeplab.tools.learn:run"), train_config=True, after=fresh_folder)


def show_aug() -> None:
    launch("show_aug", _imported("deeplab.tools.show_aug:run"), train_config=True)


def inspect_model() -> None:
    launch("inspect_model", _imported("deeplab.tools.inspect_model:run"), before=_run_dir_checkpoint)


def bench_loader() -> None:
    launch("bench_loader", _imported("deeplab.tools.loader_bench:report"), train_config=True)


def _check_data(cfg: DictConfig) -> None:
    from deeplab.tools.check_data import run

    if run(cfg):
        sys.exit(1)  # problems were listed above


def check_data() -> None:
    launch("check_data", _check_data, train_config=True)


def _prepare_data(cfg: DictConfig) -> None:
    from hydra.utils import instantiate

    if not cfg.data.get("prepare"):
        print(f"data.root={cfg.data.root}: this dataset needs no preparation")
        return
    print(f"prepared: {instantiate(cfg.data.prepare)()}")


def prepare_data() -> None:
    launch("prepare_data", _prepare_data, train_config=True)


def complexity() -> None:
    launch("complexity", _imported("deeplab.tools.complexity:report"), train_config=True)


def memory() -> None:
    launch("memory", _imported("deeplab.tools.memory:report"), train_config=True)


def gpu_check() -> None:
    """`gpu-check [--dry-run]`: every GPU path and its speed (no Hydra: a fixed plan)."""
    from deeplab.tools.gpu_check import main

    sys.exit(main(sys.argv[1:]))


def compare() -> None:
    """`compare A B`: two evaluations' per-class IoUs and a paired bootstrap interval (no Hydra)."""
    from deeplab.tools.compare import main

    sys.exit(main(sys.argv[1:]))


def report() -> None:
    """`report SWEEP_DIR`: rebuilds a sweep's report.md, report.csv and pareto.png (no Hydra)."""
    from deeplab.tools.report import main

    sys.exit(main(sys.argv[1:]))
