"""The package as users install it: a wheel built from the checkout, installed (not editable) into
a fresh virtual environment, its console scripts run from an empty folder. The dependencies are
the ones this environment already has (no network): a .pth line puts its site-packages after the
new environment's own, so `deeplab` itself comes from the wheel alone."""

import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, TINY_NET, _user_env

pytestmark = pytest.mark.slow


def _not_sources(folder: str, names: list[str]) -> set[str]:
    """What a checkout holds besides its sources: the environment, git, build and run outputs."""
    top = {".venv", ".git", "build", "dist", "outputs", "data"} if Path(folder) == ROOT else set()
    return {n for n in names if n in top or n == "__pycache__" or n.endswith(".egg-info")}


def _run(command: list[str], cwd: Path, timeout: int = 600) -> str:
    result = subprocess.run(command, cwd=cwd, env=_user_env(None), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh environment with the wheel installed."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # building writes build/ beside the sources: a copy keeps the checkout untouched
    shutil.copytree(ROOT, source, ignore=_not_sources)
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
          "-w", str(work / "dist")], cwd=work)
    wheel = next((work / "dist").glob("deeplab-*.whl"))
    env = work / "env"
    _run([sys.executable, "-m", "venv", str(env)], cwd=work)
    python = env / "bin" / "python"
    own = _run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], cwd=work).strip()
    (Path(own) / "dependencies.pth").write_text(site.getsitepackages()[0] + "\n")
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], cwd=work)
    return env / "bin"


def test_the_console_scripts_run_from_an_empty_folder(installed, tmp_path):
    where = _run([str(installed / "python"), "-c", "import deeplab; print(deeplab.__file__)"], cwd=tmp_path)
    assert where.startswith(str(installed.parent)), where  # the wheel's copy, not the checkout's
    assert "backbone: mobilenet_v2, resnet101, resnet18, resnet50, xception, xception65" in \
        _run([str(installed / "deeplab-train"), "--help"], cwd=tmp_path)

    # a data option of the user's own, beside the shipped ones, then a tiny run with it
    (tmp_path / "mine" / "data").mkdir(parents=True)
    (tmp_path / "mine" / "data" / "roads.yaml").write_text(
        "# @package data\ndefaults:\n  - synthetic\n  - _self_\nnum_workers: 0\nprepare:\n  num_train: 8\n"
        "  num_val: 4\n")
    _run([str(installed / "deeplab-train"), "--config-dir", "mine", "data=roads", "logger=none",
          "trainer.precision=32-true", "trainer.max_epochs=1", *TINY_NET, "hydra.run.dir=run"], cwd=tmp_path)
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()
    assert (tmp_path / "data" / "synthetic_voc").is_dir()  # data and outputs under the folder it ran from

    _run([str(installed / "deeplab-eval"), "ckpt_path=run", "data.num_workers=0", "hydra.run.dir=eval"], cwd=tmp_path)
    assert (tmp_path / "eval" / "metrics.json").is_file()
    image = next((tmp_path / "data" / "synthetic_voc" / "JPEGImages").iterdir())
    _run([str(installed / "deeplab-predict"), "ckpt_path=run", f"input={image}", "output=masks"], cwd=tmp_path)
    assert (tmp_path / "masks" / f"{image.stem}.png").is_file()
    _run([str(installed / "deeplab-export"), "ckpt_path=run", "output=model.onnx", "example_size=[64,64]",
          "check_size=[48,80]"], cwd=tmp_path)
    assert (tmp_path / "model.onnx").is_file()
    assert not list(installed.parent.rglob("outputs"))  # nothing written into the installed package
