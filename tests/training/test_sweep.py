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


def multirun(tmp_path, data_dir, *args, sweep: str = "sweep"):
    return run_script("train.py", "-m", *TINY, f"paths.data_dir={data_dir}", f"paths.log_dir={tmp_path}",
                      f"hydra.sweep.dir={tmp_path / sweep}", *args)


def inspect(run_dir: Path, summary: bool) -> dict | list:
    args = [str(WANDB), "leet", "inspect", "--json", *(["--summary"] if summary else []), str(run_dir / "wandb")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if summary else [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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



def _history(run_dir: Path) -> dict[float, float]:
    lines = (run_dir / "validation.jsonl").read_text().splitlines()
    return {r["epoch"]: r["val/mIoU"] for r in map(json.loads, lines)}


# Batches of 4 (12 steps an epoch): at lr 1e-2 the tiny network's val/mIoU after one epoch is above
# that of the same network at lr 1e-7 (still its random initialisation).
PRUNING = ("sweep.prune=median", "sweep.prune_after=1", "data.batch_size=4", "trainer.max_epochs=2",
           "data.prepare.num_train=48", "data.prepare.num_val=12")


@pytest.mark.slow
def test_median_pruning_stops_the_hopeless_job_and_the_report_marks_it(tmp_path, small_synthetic):
    """Jobs in sequence: job 0 has no peers, job 1 ties job 0 (same lr, same seed), job 2 (lr 1e-7)
    is below the median of jobs 0 and 1 after its first epoch and stops there."""
    result = multirun(tmp_path, small_synthetic, *PRUNING, "optim.lr=1e-2,1e-2,1e-7")
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweep"
    histories = [_history(sweep / str(n)) for n in range(3)]
    summaries = [json.loads((sweep / str(n) / "summary.json").read_text()) for n in range(3)]
    assert list(histories[0]) == list(histories[1]) == [1.0, 2.0] and histories[0] == histories[1]
    assert summaries[0]["pruned"] is None and summaries[1]["pruned"] is None
    assert list(histories[2]) == [1.0]  # stopped after the validation that found it below the median
    median = (histories[0][1.0] + histories[1][1.0]) / 2
    assert histories[2][1.0] < median
    assert summaries[2]["pruned"] == {"epoch": 1.0, "val/mIoU": histories[2][1.0], "median": median, "peers": 2}
    assert summaries[2]["global_step"] == 12 < summaries[0]["global_step"] == 24
    assert "pruned: val/mIoU" in result.stdout and "below the median" in result.stdout
    with (sweep / "report.csv").open() as handle:
        rows = {r["job"]: r for r in csv.DictReader(handle) if r["row"] == "run"}
    assert [rows[j]["status"] for j in "012"] == ["ok", "ok", "pruned"]
    assert rows["2"]["pruned_epoch"] == "1" and float(rows["2"]["mIoU"]) == pytest.approx(histories[2][1.0])
    assert "| pruned | 1 |" in (sweep / "report.md").read_text()

    # Resumed on its own, the pruned job stays stopped; with sweep.prune=null it trains on.
    resumed = run_script("train.py", f"ckpt_path={sweep / '2'}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "pruned after 1 epochs when it last ran" in resumed.stdout
    assert json.loads((sweep / "2" / "summary.json").read_text())["global_step"] == 12
    resumed = run_script("train.py", f"ckpt_path={sweep / '2'}", "sweep.prune=null")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((sweep / "2" / "summary.json").read_text())
    assert summary["global_step"] == 24 and summary["pruned"] is None and list(_history(sweep / "2")) == [1.0, 2.0]



@pytest.mark.slow
def test_a_pruned_optuna_trial_records_its_last_value(tmp_path, small_synthetic):
    """The study (kept in SQLite, read back here) records each trial's return value: a pruned
    trial's is the val/mIoU it was stopped at. With the config's sampler seed, TPE draws lr 0.02,
    0.01, then 1e-7, which is pruned (0.01 may be too, below 0.02's value)."""
    import optuna

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    result = multirun(tmp_path, small_synthetic, *PRUNING, "hparams_search=optuna", "hydra.sweeper.n_trials=3",
                      "optim.lr=choice(0.01,0.02,1e-7)", "optim.weight_decay=1e-4", "data.crop_size=128",
                      "aug=deeplab", f"hydra.sweeper.storage={storage}")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = optuna.load_study(study_name="deeplab", storage=storage).trials
    assert len(trials) == 3
    pruned_lrs = set()
    for trial in trials:
        job = tmp_path / "sweep" / str(trial.number)
        summary = json.loads((job / "summary.json").read_text())
        assert OmegaConf.load(job / ".hydra" / "config.yaml").optim.lr == trial.params["optim.lr"]
        expected = summary["pruned"]["val/mIoU"] if summary["pruned"] else summary["val/mIoU_best"]
        assert trial.value == pytest.approx(expected, abs=1e-12)
        if summary["pruned"]:
            assert trial.number > 0 and trial.value < summary["pruned"]["median"]  # trial 0 has no peers
            pruned_lrs.add(trial.params["optim.lr"])
    assert 1e-7 in pruned_lrs

@pytest.mark.slow
def test_the_report_of_two_sweeps_together(tmp_path, small_synthetic):
    """Seeds 1 and 2 run in one sweep, seed 3 in another: tools/report.py over both gives one
    setting of n=3, its mean recomputed from the three summary.json files."""
    for sweep, seeds in (("a", "seed=1,2"), ("b", "seed=3")):
        result = multirun(tmp_path, small_synthetic, seeds, "trainer.limit_train_batches=2", sweep=sweep)
        assert result.returncode == 0, result.stderr[-3000:]
    refused = run_script("tools/report.py", str(tmp_path / "a"), str(tmp_path / "b"))
    assert refused.returncode == 2 and refused.stderr.strip() == "error: 2 sweep dirs: give --out DIR for their report"
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run_script("tools/report.py", str(tmp_path / "a"), str(empty), "--out", str(tmp_path / "both"))
    assert refused.returncode == 2 and f"SWEEP_DIR={empty} holds no job directories" in refused.stderr
    result = run_script("tools/report.py", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "both"))
    assert result.returncode == 0, result.stderr
    with (tmp_path / "both" / "report.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    runs = [r for r in rows if r["row"] == "run"]
    assert [r["job"] for r in runs] == ["a/0", "a/1", "b/0"]
    assert [r["name"] for r in runs] == ["seed=1", "seed=2", "seed=3"]
    (setting,) = [r for r in rows if r["row"] == "setting"]
    values = [json.loads((tmp_path / job / "summary.json").read_text())["val/mIoU_best"] for job in
              ("a/0", "a/1", "b/0")]
    assert setting["n"] == "3" and setting["jobs"] == "a/0 a/1 b/0"
    assert float(setting["mIoU"]) == pytest.approx(sum(values) / 3, abs=1e-12)
    assert (tmp_path / "both" / "pareto.png").is_file()
