"""The Python API: deeplab.train and deeplab.evaluate run what train.py and eval.py run, return
their results, and raise a user's mistake as UserError with the line the command prints."""

import json
import logging
import subprocess
import sys

import pytest

import deeplab
from deeplab.errors import UserError

from .conftest import SMALL, TINY_NET, run_entry


def _mapping(args) -> dict:
    """`key=value` strings as the nested mapping a notebook would write."""
    result: dict = {}
    for arg in args:
        key, _, value = arg.partition("=")
        *parents, name = key.split(".")
        node = result
        for parent in parents:
            node = node.setdefault(parent, {})
        node[name] = int(value) if value.isdigit() else value
    return result


@pytest.mark.slow
@pytest.mark.parametrize("as_mapping", [False, True])
def test_train_returns_the_run_and_evaluate_its_metrics(as_mapping, tmp_path, small_synthetic, trained_run):
    """`trained_run`: the data exists, so each form trains on the same images."""
    args = [f"paths.data_dir={small_synthetic}", *SMALL, *TINY_NET, "trainer.max_epochs=1",
            f"hydra.run.dir={tmp_path / 'run'}"]
    handlers = logging.getLogger().handlers[:]
    result = deeplab.train(_mapping(args) if as_mapping else args)
    assert result.run_dir == tmp_path / "run"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert result.summary == summary and result.miou_best == summary["val/mIoU_best"] is not None
    assert result.best_ckpt.is_file() and result.last_ckpt == tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert logging.getLogger().handlers == handlers  # the run's log file and console are closed again
    assert sys.argv[0] != "deeplab-train"

    import matplotlib

    matplotlib.use("svg")  # a backend of the caller's, as a notebook has its inline one
    metrics = deeplab.evaluate(result.run_dir, {"data": {"num_workers": 0}, "os": 8,
                                                "hydra": {"run": {"dir": str(tmp_path / "eval")}}})
    assert metrics == json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["output_stride"] == 8 and metrics["ckpt_path"] == str(result.best_ckpt)
    assert (tmp_path / "eval" / "confusion_matrix.png").is_file()  # drawn with Agg during the run
    assert matplotlib.get_backend() == "svg"
    matplotlib.use("agg")


@pytest.mark.parametrize("bad", ["optim.lr=-0.1", "model.aspp.chanels=16", "os=12", "optim.lr=1e-3)",
                                 "backbone=resnet5"])
def test_a_mistake_is_raised_with_the_line_train_py_prints(bad, tmp_path, capsys, monkeypatch):
    code, stderr = run_entry("train.py", bad, f"hydra.run.dir={tmp_path / 'cli'}", capsys=capsys,
                             monkeypatch=monkeypatch)
    printed = stderr.strip().splitlines()[-1]
    assert code == 2 and printed.startswith("error: ")
    with pytest.raises(UserError) as raised:
        deeplab.train([bad, f"hydra.run.dir={tmp_path / 'api'}"])
    assert f"error: {raised.value}" == printed
    assert not (tmp_path / "api").exists()


def test_flags_and_a_lone_string_are_refused_in_one_line():
    with pytest.raises(UserError, match="^-m: the Python API takes overrides"):
        deeplab.train(["-m", "seed=1,2"])
    with pytest.raises(UserError, match="give a list of key=value strings or a mapping"):
        deeplab.train("os=8")


@pytest.mark.slow
def test_import_deeplab_and_segmenter_leave_lightning_and_hydra_out():
    code = "import sys, deeplab; deeplab.Segmenter; print(sorted({'pytorch_lightning', 'hydra'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr[-2000:]
