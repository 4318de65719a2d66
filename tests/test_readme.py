"""The README is a user's first page: its configuration map's "(default)" marks are what
`python train.py` composes, and every command it shows composes."""

import re
import shlex

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from deeplab.cli.command_line import prepare

from .conftest import CONF_DIR, ROOT

README = (ROOT / "README.md").read_text()
SCRIPTS = {"train.py": "train", "eval.py": "evaluate", "predict.py": "predict", "tools/check_data.py": "check_data",
           "tools/prepare_data.py": "prepare_data", "tools/complexity.py": "complexity",
           "tools/show_aug.py": "show_aug", "tools/inspect_model.py": "inspect_model", "tools/memory.py": "memory",
           "tools/bench.py": "bench", "tools/learn.py": "learn", "tools/bench_loader.py": "bench_loader",
           "tools/export.py": "export"}
WITHOUT_HYDRA = ("tools/gpu_check.py", "tools/report.py", "tools/compare.py", "tools/trimap_plot.py")


def _compose(config_name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name, overrides=overrides, return_hydra_config=True)


def test_the_map_marks_what_train_py_composes():
    cfg = _compose("train", [])
    marks = dict(re.findall(r"^\| `([\w/]+)`[^|]*\| .*?`(\w+)` \(default", README, re.M))
    assert len(marks) >= 14, marks
    for group, option in marks.items():
        composed = cfg.os if group == "os" else cfg.hydra.runtime.choices[group]
        assert str(composed) == option, f"README marks {group}={option}; python train.py composes {composed}"


def _commands():
    for line in README.splitlines():
        if line.startswith("python "):
            words = shlex.split(line.split(" # ")[0] if " # " in line else line)
            yield pytest.param(words[1], words[2:], id=" ".join(words[1:])[:80])


@pytest.mark.slow
@pytest.mark.parametrize("script, args", list(_commands()))
def test_every_command_composes(script, args):
    if script in WITHOUT_HYDRA:
        assert (ROOT / script).is_file()
        return
    config_name = SCRIPTS[script]
    parser = OverridesParser.create()
    overrides = []
    for arg in prepare([a.replace("...", "x") for a in args], CONF_DIR, config_name):
        if arg.startswith("-"):
            continue
        override = parser.parse_override(arg)
        if override.is_sweep_override():  # one job of the sweep
            value = next(iter(override.sweep_iterator()))
            arg = f"{arg.split('=', 1)[0]}={value}"
        overrides.append(arg)
    _compose(config_name, overrides)
