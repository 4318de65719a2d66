"""DDP on 2 CPU processes (gloo): one run dir, one W&B run, one summary; metrics reduced exactly."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from deeplab.data.synthetic import make_synthetic_voc

from ..conftest import ROOT, SMALL, TINY_NET, _user_env, run_process, run_script, run_train

pytestmark = pytest.mark.slow  # two gloo processes each: in CI's slow suite (make test-slow)

HERE = Path(__file__).resolve().parent


def test_ddp_training_is_one_run(tmp_path, small_synthetic):
    run_dir = tmp_path / "logs" / "run"
    args = [a for a in SMALL if not a.startswith("logger=")]
    result = run_train(run_dir, *args, "logger=wandb", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                       "trainer.sync_batchnorm=false",
                       "trainer.max_epochs=1", "data.prepare.num_train=32", data_dir=small_synthetic, process=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["run"]  # no second run dir from process 1
    assert len(list(run_dir.glob("wandb/offline-run-*"))) == 1
    assert list(tmp_path.rglob("summary.json")) == [run_dir / "summary.json"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 2  # 32 images, batches of 8 on each of 2 processes
    assert summary["val/mIoU"] is not None


DDP_CPU = ("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.sync_batchnorm=false")


def ddp_sweep(tmp_path, data_dir, *args):
    return run_process("train.py", "-m", *DDP_CPU, *[a for a in SMALL if not a.startswith("logger=")], *TINY_NET,
                       f"paths.data_dir={data_dir}", f"paths.log_dir={tmp_path / 'logs'}",
                       f"hydra.sweep.dir={tmp_path / 'logs' / 'sweep'}", *args)


def test_a_local_sweep_of_ddp_jobs_runs_each_job_as_one_process_group(tmp_path, small_synthetic):
    """The launcher starts each job's second process itself (Lightning's own start would re-run
    the -m command line, a second sweep in every extra process): two jobs one after the other,
    each of 2 processes, each one run dir, one summary.json and one W&B run; the report over both."""
    result = ddp_sweep(tmp_path, small_synthetic, "seed=1,2", "logger=wandb", "trainer.max_epochs=1",
                       "data.prepare.num_train=32")
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "logs" / "sweep"
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["sweep"]  # no runs/ of an extra process
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    assert sorted(tmp_path.rglob("summary.json")) == [sweep / "0" / "summary.json", sweep / "1" / "summary.json"]
    for job in ("0", "1"):
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert summary["global_step"] == 2  # 32 images in batches of 8 on each of 2 processes
        assert summary["val/mIoU_best"] is not None
        assert len(list((sweep / job).glob("wandb/offline-run-*"))) == 1
    with (sweep / "report.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["row"] == "run"]
    assert [(r["job"], r["name"], r["status"]) for r in rows] == [("0", "seed=1", "ok"), ("1", "seed=2", "ok")]


def test_pruning_stops_every_process_of_a_ddp_job(tmp_path, small_synthetic):
    """Rank 0 decides and tells the others: the pruned job's two processes stop at the same step."""
    result = ddp_sweep(tmp_path, small_synthetic, "optim.lr=1e-2,1e-7", "sweep.prune=median", "logger=none",
                       "data.batch_size=4", "trainer.max_epochs=3")
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "logs" / "sweep"
    kept, pruned = (json.loads((sweep / job / "summary.json").read_text()) for job in ("0", "1"))
    assert kept["pruned"] is None and kept["global_step"] == 18  # 48 images, 4 a process, 3 epochs
    assert pruned["pruned"]["epoch"] == 2.0 and pruned["global_step"] == 12


def test_a_failed_ddp_job_stops_its_ranks_and_the_sweep_goes_on(tmp_path, small_synthetic):
    result = ddp_sweep(tmp_path, small_synthetic, "model.decoder.num_convs=5,2", "logger=none",
                       "trainer.max_epochs=1", "data.prepare.num_train=32")
    assert result.returncode != 0  # the sweep says it had a failure
    assert "error: model.decoder.num_convs=5 is not allowed; allowed: 1, 2, 3" in result.stderr
    sweep = tmp_path / "logs" / "sweep"
    assert not (sweep / "0" / "summary.json").exists()
    assert json.loads((sweep / "1" / "summary.json").read_text())["global_step"] == 2  # both ranks of job 1 ran
    with (sweep / "report.csv").open() as handle:
        assert [(r["job"], r["status"]) for r in csv.DictReader(handle)] == [("0", "failed"), ("1", "ok")]


def test_two_nodes_on_one_host_are_one_run(tmp_path, small_synthetic):
    """Two "machines" of one process each, started as SLURM or a cluster's own scripts would start
    them (the same command, MASTER_ADDR/MASTER_PORT, NODE_RANK 0 and 1, trainer.num_nodes=2): one
    run directory, one summary.json, and a validation mIoU equal to eval.py's single process."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run_dir = tmp_path / "logs" / "run"
    args = ["train.py", *DDP_CPU[:2], "trainer.devices=1", "trainer.num_nodes=2", "trainer.sync_batchnorm=false",
            *[a for a in SMALL if not a.startswith("logger=")], *TINY_NET, "logger=none", "trainer.max_epochs=1",
            "data.prepare.num_train=32", f"paths.data_dir={small_synthetic}", f"paths.log_dir={tmp_path / 'logs'}",
            f"hydra.run.dir={run_dir}"]
    env = {**_user_env(None), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    nodes = [subprocess.Popen([sys.executable, *args], cwd=ROOT, env={**env, "NODE_RANK": str(rank)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outputs = [node.communicate(timeout=600) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["run"]
    assert list(tmp_path.rglob("summary.json")) == [run_dir / "summary.json"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 2  # 32 images in batches of 8 on each of 2 nodes
    # rank zero speaks, from the start-up description (before any process group exists) to the result
    for line in ("groups   data=synthetic", "val/mIoU_best"):
        assert line in outputs[0][0] and line not in outputs[1][0]
        assert (run_dir / "train.log").read_text().count(line) == 1
    evaluated = run_script("eval.py", f"ckpt_path={summary['best_ckpt']}", f"hydra.run.dir={tmp_path / 'eval'}",
                           f"paths.data_dir={small_synthetic}")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["images"] == 12 and metrics["mIoU"] == pytest.approx(summary["val/mIoU_best"], abs=1e-6)


@pytest.mark.parametrize("num_val", [5, 6])  # odd: one process gets one image more
def test_validation_on_two_processes_equals_one(trained_run, tmp_path, num_val):
    root = make_synthetic_voc(tmp_path / "synthetic_voc", num_train=2, num_val=num_val, seed=7)
    outputs = []
    for devices in (1, 2):
        result = subprocess.run([sys.executable, str(HERE / "ddp_validate.py"), str(trained_run / "checkpoints" /
                                 "best.ckpt"), str(root), str(devices)], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    one, two = outputs
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one["images"] == two["images"] == num_val  # every image once, none twice
    assert two["val/mIoU"] == pytest.approx(one["val/mIoU"], abs=1e-6)
    assert two["val/pixel_acc"] == pytest.approx(one["val/pixel_acc"], abs=1e-6)


def test_multilabel_validation_on_two_processes_equals_eval_py(tmp_path):
    """Each label's counts (torchmetrics' MultilabelStatScores) summed across 2 processes, with an odd
    number of validation images: val/mIoU equals eval.py's in one process."""
    run_dir = tmp_path / "logs" / "run"
    result = run_train(run_dir, *DDP_CPU, "task=multilabel", "data=synthetic_multilabel", "data.prepare.num_train=32",
                       "data.prepare.num_val=7", *[a for a in SMALL if not a.startswith("data.prepare")], *TINY_NET,
                       "trainer.max_epochs=1", data_dir=tmp_path / "data", process=True)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    evaluated = run_script("eval.py", f"ckpt_path={summary['best_ckpt']}", f"hydra.run.dir={tmp_path / 'eval'}",
                           "eval.bootstrap=0")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["images"] == 7 and metrics["mIoU"] == pytest.approx(summary["val/mIoU_best"], abs=1e-6)
    assert metrics["mF1"] == pytest.approx(summary["val/mF1"], abs=1e-6)
