"""The package order: model and data at the bottom, then inference, then the Lightning-free
builders, then training and evaluation side by side, then the command line and tools. Read from
the import statements of every module, so a new import that breaks the order fails here."""

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_entry

PACKAGE = ROOT / "src" / "deeplab"
# What each layer may import from the project (besides itself); lower layers never see higher ones.
ALLOWED = {
    "errors": set(), "imagenet": set(), "log": set(), "allowed": set(),
    "model": {"errors", "imagenet"},
    "resolvers": {"model"},
    "data": {"errors", "imagenet"},
    "inference": {"model"},
    "schema": {"errors", "allowed", "model", "data", "inference"},
    "builders": {"errors", "model", "data", "inference", "schema"},
    "deploy": {"errors", "model", "data", "inference", "builders"},
    "training": {"errors", "log", "model", "data", "inference", "builders", "schema"},
    "evaluation": {"errors", "log", "model", "data", "inference", "builders", "deploy", "schema"},
    "tools": {"errors", "log", "model", "data", "inference", "builders", "deploy", "schema", "training",
              "evaluation"},
    "cli": {"errors", "log", "allowed", "schema", "training", "evaluation", "tools"},
    "api": {"errors", "cli"},
}
NO_FRAMEWORKS = ("model", "data", "inference")  # plain PyTorch: usable without Lightning or Hydra


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_module_has_a_layer():
    assert {_layer(p) for p in MODULES} <= set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path):
    layer = _layer(path)
    for name in _imports(path):
        if name.startswith("deeplab."):
            target = name.split(".")[1]
            assert target == layer or target in ALLOWED[layer], f"{layer} imports {name}"
        if layer in NO_FRAMEWORKS:
            assert name.split(".")[0] not in ("pytorch_lightning", "lightning", "hydra"), f"{layer} imports {name}"


def test_training_and_evaluation_do_not_import_each_other():
    for a, b in (("training", "evaluation"), ("evaluation", "training")):
        for path in (PACKAGE / a).rglob("*.py"):
            assert not any(n.startswith(f"deeplab.{b}") for n in _imports(path)), path


def test_predict_help_loads_no_training_stack(capsys, monkeypatch):
    for name in [m for m in sys.modules if m.startswith(("pytorch_lightning", "lightning", "deeplab.training"))]:
        monkeypatch.delitem(sys.modules, name)
    code, _, out = run_entry("predict.py", "--help", capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 0 and "ckpt_path" in out
    assert not any(m.startswith(("pytorch_lightning", "lightning.", "deeplab.training")) for m in sys.modules)
