"""Every Hydra command-line flag on every entry point: --cfg (job, hydra, all), --resolve,
--package, --info, --help, --hydra-help, --version, --config-dir with --config-name, and -m
running real jobs. Each runs in this process, as `python SCRIPT ...` would."""

import subprocess
import sys
from pathlib import Path

import pytest

from deeplab.cli import verbs

from .conftest import ROOT, SMALL, TINY_NET, assert_one_line_error, run_entry

# entry point: (its config, a line its --cfg job prints)
ENTRY_POINTS = {
    "train.py": ("train", "task_name: train"),
    "eval.py": ("evaluate", "task_name: eval"),
    "predict.py": ("predict", "overlay_alpha: 0.5"),
    "tools/check_data.py": ("check_data", "splits: null"),
    "tools/prepare_data.py": ("check_data", "splits: null"),
    "tools/bench.py": ("bench", "loader_batches: 4"),
    "tools/learn.py": ("learn", "match: smp"),
    "tools/bench_loader.py": ("bench_loader", "batches: 20"),
    "tools/complexity.py": ("complexity", "convention: plain"),
    "tools/memory.py": ("memory", "budget_gb: 80"),
    "tools/export.py": ("export", "opset: 18"),
    "tools/show_aug.py": ("show_aug", "output: aug_preview.png"),
    "tools/inspect_model.py": ("inspect_model", "size: 769"),
}
SCRIPTS = list(ENTRY_POINTS)
FLAGS = {  # flags: what the output must hold ({line} is the entry point's own config line)
    "--cfg job": ("--cfg", "job"),
    "-c job": ("-c", "job"),
    "--cfg hydra": ("--cfg", "hydra"),
    "--cfg job --resolve": ("--cfg", "job", "--resolve"),
    "--cfg all --package": ("--cfg", "all", "--package", "hydra.job"),
    "--info": ("--info",),
    "--info config": ("--info", "config"),
    "--help": ("--help",),
    "--hydra-help": ("--hydra-help",),
    "--version": ("--version",),
}
EXPECTED = {
    "--cfg job": "{line}", "-c job": "{line}", "--cfg hydra": "hydra:\n", "--cfg job --resolve": "{line}",
    "--cfg all --package": "# @package hydra.job", "--info": "Config search path", "--info config": "{line}",
    "--help": "{name} is powered by Hydra", "--hydra-help": "Hydra (1.3", "--version": "Hydra 1.3",
}


@pytest.mark.parametrize("flag", [pytest.param(f, marks=pytest.mark.slow) if "help" in f else f
                                  for f in FLAGS])  # the help texts import the command's modules: 1-2 s each
@pytest.mark.parametrize("script", SCRIPTS)
def test_each_flag_on_each_entry_point(script, flag, capsys, monkeypatch):
    code, stderr, stdout = run_entry(script, *FLAGS[flag], capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 0, stderr[-2000:]
    name = script.rsplit("/", 1)[-1].removesuffix(".py")
    assert EXPECTED[flag].format(line=ENTRY_POINTS[script][1], name=name) in stdout + stderr, stdout[-2000:]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_config_dir_and_config_name(script, tmp_path, capsys, monkeypatch):
    """A user's own folder of configs: a primary config built on the entry point's, and (for
    training) a backbone option of their own, found by the command-line checks as Hydra finds it."""
    config_name = ENTRY_POINTS[script][0]
    (tmp_path / "mine.yaml").write_text(f"defaults:\n  - {config_name}\n  - _self_\nmine_marker: 7\n")
    (tmp_path / "backbone").mkdir()
    (tmp_path / "backbone" / "mine.yaml").write_text("# @package model.backbone\nname: resnet34\nweights: null\n")
    extra = ["backbone=mine"] if config_name in ("train", "check_data", "bench", "bench_loader", "complexity",
                                                        "memory") else []
    code, stderr, stdout = run_entry(script, "--config-dir", str(tmp_path), "--config-name", "mine", "--cfg", "job",
                                     *extra, capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 0, stderr[-2000:]
    assert "mine_marker: 7" in stdout and ENTRY_POINTS[script][1] in stdout
    if extra:
        assert "name: resnet34" in stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_flags_still_check_overrides(script, capsys, monkeypatch):
    code, stderr = run_entry(script, "--cfg", "job", "no_such_key=1", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "no_such_key is not a config key")
    code, stderr = run_entry(script, "-m", "--cfg", "job", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "Only one of --run, --multirun, --cfg, --info and --shell_completion can be "
                                        "specified")
    code, stderr = run_entry(script, "--cfg", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "argument --cfg/-c: expected one argument; see --help")
    code, stderr = run_entry(script, "--config-dir", "/nonexistent/confs", "--cfg", "job", capsys=capsys,
                             monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "Additional config directory '/nonexistent/confs' not found")


def multirun_args(script: str, tmp_path, data, trained_run) -> list[str]:
    """Two small jobs each entry point can run."""
    ckpt = trained_run / "checkpoints" / "best.ckpt"
    synthetic = [f"paths.data_dir={data}", *SMALL]
    image = next((data / "synthetic_voc" / "JPEGImages").iterdir())
    return {
        "train.py": [*synthetic, *TINY_NET, "trainer.max_steps=1", "++trainer.limit_val_batches=1", "seed=1,2"],
        "eval.py": [f"ckpt_path={ckpt}", "eval.flip=false,true"],
        "predict.py": [f"ckpt_path={ckpt}", f"input={image}", f"output={tmp_path / 'masks'}", "eval.flip=false,true"],
        "tools/check_data.py": [*synthetic, "splits=[val],[train]"],
        "tools/prepare_data.py": [*synthetic, "seed=1,2"],
        "tools/bench.py": [*synthetic, *TINY_NET, "bench.input_size=[64,64]", "bench.warmup=0", "bench.iterations=1",
                           "bench.repeats=1", "bench.loader_batches=0", f"bench.output={tmp_path / 'bench.json'}",
                           "seed=1,2"],
        "tools/learn.py": [*synthetic, *TINY_NET, "trainer.max_epochs=1", "learn.seeds=[1]", "learn.split=val",
                           "learn.models=[deeplab],[smp]"],
        "tools/bench_loader.py": [*synthetic, "workers=[0]", "batches=1", "data.batch_size=2,4"],
        "tools/complexity.py": [*synthetic, "input_size=[64,64]", "os=8,16"],
        "tools/memory.py": [*synthetic, *TINY_NET, "data.crop_size=64", "os=8,16"],
        "tools/export.py": [f"ckpt_path={ckpt}", "example_size=[64,64]", "check_size=[48,80]",
                            f"output={tmp_path / 'model.onnx'}", "output_stride=16,32"],
        "tools/show_aug.py": [*synthetic, "num=2", f"output={tmp_path / 'aug.png'}", "aug=deeplab,keras"],
        "tools/inspect_model.py": [f"ckpt_path={ckpt}", f"input={image}", "size=65", "num_images=1",
                                   f"output={tmp_path / 'inspect'}", "channels=1,2"],
    }[script]


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_multirun_on_each_entry_point(script, tmp_path, small_synthetic, trained_run, capsys, monkeypatch):
    sweep = tmp_path / "sweep"
    code, stderr = run_entry(script, "-m", *multirun_args(script, tmp_path, small_synthetic, trained_run),
                             f"hydra.sweep.dir={sweep}", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"], list(sweep.iterdir())


CONSOLE_SCRIPTS = ["deeplab-train", "deeplab-eval", "deeplab-predict", "deeplab-export", "deeplab-bench",
                   "deeplab-learn", "deeplab-bench-loader", "deeplab-check-data", "deeplab-prepare-data",
                   "deeplab-complexity", "deeplab-memory", "deeplab-show-aug", "deeplab-inspect-model"]


def test_console_scripts_are_the_entry_points():
    """pyproject's [project.scripts], installed by `make test`'s `pip install -e`: the same programs."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert sorted(scripts) == sorted([*CONSOLE_SCRIPTS, "deeplab-report", "deeplab-compare", "deeplab-gpu-check"])
    for name in CONSOLE_SCRIPTS:  # each names its verb in deeplab.cli.verbs, as the file entry point calls it
        module, _, function = scripts[name].partition(":")
        assert module == "deeplab.cli.verbs" and callable(getattr(verbs, function))


@pytest.mark.slow
def test_deeplab_train_help_runs_as_installed():
    command = Path(sys.executable).parent / "deeplab-train"
    assert command.is_file(), "run `make test` (pip install -e .) to install the console scripts"
    result = subprocess.run([str(command), "--help"], capture_output=True, text=True, timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "train is powered by Hydra" in result.stdout and "backbone: " in result.stdout
