"""Sweeps as users run them: a 2x2 multirun logged to W&B (offline) and reported, an Optuna search."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ..conftest import SMALL, TINY_NET, run_script

WANDB = Path(sys.executable).parent / "wandb"
# the tiny network's encoder and ASPP (its decoder keys would not compose with decoder=deeplabv3)
TINY = (*SMALL, *TINY_NET[:2], "trainer.max_epochs=1", "data.prepare.num_train=16", "data.prepare.num_val=4")


def multirun(tmp_path, data_dir, *args):
    return run_script("train.py", "-m", *TINY, f"paths.data_dir={data_dir}", f"paths.log_dir={tmp_path}",
                      f"hydra.sweep.dir={tmp_path / 'sweep'}", *args)


def inspect(run_dir: Path, summary: bool) -> dict | list:
    args = [str(WANDB), "leet", "inspect", "--json", *(["--summary"] if summary else []), str(run_dir / "wandb")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if summary else [json.loads(line) for line in result.stdout.splitlines()]


def test_two_by_two_sweep_is_one_wandb_group_and_one_report(tmp_path, small_synthetic):
    result = multirun(tmp_path, small_synthetic, "logger=wandb", "os=8,16", "decoder=deeplabv3plus,deeplabv3")
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweep"
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [j.name for j in jobs] == ["0", "1", "2", "3"]
    names, groups = set(), set()
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        run = inspect(job, summary=True)
        assert run["state"] == "finished" and run["exit_code"] == 0
        assert run["summary"]["val/mIoU"] == pytest.approx(summary["val/mIoU"], abs=1e-9)
        assert run["summary"]["madds"] == summary["madds"] > 0 and run["summary"]["params"] == summary["params"]
        assert {"val/confusion_matrix_table", "val/prediction_0"} <= run["summary"].keys()
        record = next(r["run"] for r in inspect(job, summary=False) if r["type"] == "run")
        groups.add(record["run_group"])
        assert record["job_type"] == record["display_name"]  # no seeds: each job is its own setting
        names.add(record["display_name"])
        config = OmegaConf.load(job / ".hydra" / "config.yaml")
        assert record["display_name"] == f"os={config.model.output_stride},decoder=" + (
            "deeplabv3plus" if config.model.decoder else "deeplabv3")
        assert f"os={config.model.output_stride}" in record["tags"]
    assert len(groups) == 1 and len(names) == 4
    assert len(list(sweep.glob("*/wandb/offline-run-*"))) == 4  # one run a job

    with (sweep / "report.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    assert sorted((r["train_os"], r["decoder"]) for r in rows) == [
        ("16", "deeplabv3"), ("16", "deeplabv3plus"), ("8", "deeplabv3"), ("8", "deeplabv3plus")]
    # OS8 costs more than OS16 and the decoder adds to either
    madds = {(r["train_os"], r["decoder"]): float(r["madds_billion"]) for r in rows}
    assert madds[("8", "deeplabv3plus")] > madds[("16", "deeplabv3plus")] > madds[("16", "deeplabv3")]
    report = (sweep / "report.md").read_text()
    assert report.count("\n| ") == 5  # the header and four runs
    assert (sweep / "pareto.png").stat().st_size > 10_000

    (sweep / "report.md").unlink()
    rebuilt = run_script("tools/report.py", str(sweep))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (sweep / "report.md").read_text() == report


def test_optuna_search_runs_trials_and_reports_the_best(tmp_path, small_synthetic):
    # one step of two images a trial: the search space's crops (321, 513) are costly on a CPU
    result = multirun(tmp_path, small_synthetic, "hparams_search=optuna", "hydra.sweeper.n_trials=2",
                      "data.batch_size=2", "trainer.limit_train_batches=1")
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweep"
    trials = [json.loads((sweep / str(n) / "summary.json").read_text())["val/mIoU_best"] for n in (0, 1)]
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best.best_value == pytest.approx(max(trials), abs=1e-6)
    assert {"optim.lr", "optim.weight_decay"} <= set(best.best_params)
    lrs = [OmegaConf.load(sweep / str(n) / ".hydra" / "config.yaml").optim.lr for n in (0, 1)]
    assert lrs[0] != lrs[1] and all(1e-4 <= lr <= 1e-2 for lr in lrs)


def test_a_failed_job_does_not_stop_the_sweep(tmp_path, small_synthetic):
    result = multirun(tmp_path, small_synthetic, "model.decoder.num_convs=5,2")
    assert result.returncode != 0  # the sweep says it had a failure
    assert "error: model.decoder.num_convs=5 is not allowed; allowed: 1, 2, 3" in result.stderr
    sweep = tmp_path / "sweep"
    assert (sweep / "1" / "summary.json").is_file()  # the job after the failed one still ran
    with (sweep / "report.csv").open() as handle:
        rows = {r["job"]: r for r in csv.DictReader(handle)}
    assert rows["0"]["status"] == "failed" and rows["0"]["name"] == "model.decoder.num_convs=5"
    assert rows["1"]["status"] == "ok" and rows["1"]["name"] == "model.decoder.num_convs=2"


def test_seeds_are_aggregated_per_setting(tmp_path, small_synthetic):
    """seed=1,2 x decoder=deeplabv3,deeplabv3plus: two settings of two runs, their mean and
    sample standard deviation recomputed here from the four summary.json files."""
    result = multirun(tmp_path, small_synthetic, "seed=1,2", "decoder=deeplabv3,deeplabv3plus", "logger=wandb")
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweep"
    with (sweep / "report.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    settings = [r for r in rows if r["row"] == "setting"]
    assert len(settings) == 2 and len([r for r in rows if r["row"] == "run"]) == 4
    for setting in settings:
        decoder = setting["setting"].removeprefix("decoder=")
        values = [json.loads((sweep / job / "summary.json").read_text())["val/mIoU_best"]
                  for job in setting["jobs"].split()]
        assert setting["n"] == "2" and len(values) == 2
        for job in setting["jobs"].split():
            assert f"decoder={decoder}" in OmegaConf.load(sweep / job / ".hydra" / "overrides.yaml")
            record = next(r["run"] for r in inspect(sweep / job, summary=False) if r["type"] == "run")
            assert record["job_type"] == f"decoder={decoder}"  # the seeds of a setting share it on W&B
        assert float(setting["mIoU"]) == pytest.approx(sum(values) / 2, abs=1e-12)
        assert float(setting["mIoU_std"]) == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5, abs=1e-12)
    report = (sweep / "report.md").read_text()
    assert "| setting | n | jobs |" in report and report.count(" +- ") >= 2
    assert (sweep / "pareto.png").stat().st_size > 10_000
