"""Multiply-Adds against the DeepLabV3+ paper's Tables 3 and 5 (the figures are copied from the paper)."""

import json
from pathlib import Path

import pytest
import torch

from deeplab.inference.complexity import count_madds
from deeplab.inference.multiscale import grid_size, scaled_size
from deeplab.tools.paper import BEGIN, END, SCALES, model_for, read_rows, row_madds

from ..conftest import ROOT, assert_one_line_error, run_entry, run_script

ROWS = read_rows(Path(__file__).with_name("deeplabv3plus_tables.csv"))
# Xception-65 matches TF's counting closely; ResNet-101 differs because TF-slim strides in the last
# unit of a stage, not the first (see docs/paper.md, "Paper fidelity").
TOLERANCE = {"xception65": 0.005, "resnet101": 0.06}
DOC_TABLE = (ROOT / "docs" / "complexity.md").read_text().split(BEGIN)[1].split(END)[0].strip().splitlines()


def test_table_has_all_rows():
    assert len(ROWS) == 38 and sum(r["pretraining"] == "imagenet" for r in ROWS) == 30


@pytest.mark.parametrize("row", [r for r in ROWS if r["pretraining"] == "imagenet"],
                         ids=lambda r: f"{r['source']}-{r['backbone']}-os{r['train_os']}to{r['eval_os']}-"
                                       f"dec{r['decoder']}-ms{r['multi_scale']}-flip{r['flip']}-sep{r['separable']}")
def test_paper_multiply_adds(row):
    madds = row_madds(row, "tf")
    paper = float(row["madds_billion"]) * 1e9
    assert abs(madds / paper - 1) <= TOLERANCE[row["backbone"]], f"{madds / 1e9:.2f}B vs paper {paper / 1e9:.2f}B"


@pytest.mark.slow
def test_the_docs_table_is_the_tools_output(tmp_path):
    """docs/complexity.md's table is what tools/paper_table.py writes, not a copy made by hand."""
    doc = ROOT / "docs" / "complexity.md"
    copy = tmp_path / "complexity.md"
    copy.write_text(doc.read_text().replace(DOC_TABLE[-1], "| stale |"))  # the tool must rewrite it
    result = run_script("tools/paper_table.py", str(ROOT / "tests" / "tools" / "deeplabv3plus_tables.csv"),
                        "--write", str(copy))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"wrote 30 rows into {copy}"
    assert copy.read_text() == doc.read_text(), "rerun: python tools/paper_table.py ... --write docs/complexity.md"


def test_scaled_sides_follow_the_official_code():
    assert [scaled_size((513, 513), s)[0] for s in SCALES] == [257, 385, 513, 641, 769, 897]
    assert grid_size((500, 375), 16) == (513, 385) and grid_size((513, 97), 8) == (513, 97)
    conv = torch.nn.Conv2d(3, 4, 1, bias=False)
    conv.output_stride = 16  # counted as inference runs it: padded to 513 x 385, then scaled
    assert count_madds(conv, (500, 375), scales=[0.5])["passes"][0]["size"] == [257, 193]


def test_tf_convention_pads_atrous_convs_only():
    conv = torch.nn.Conv2d(3, 4, 3, padding=6, dilation=6, bias=False)
    plain = count_madds(conv, (65, 65), convention="plain")["madds"]
    tf = count_madds(conv, (65, 65), convention="tf")["madds"]
    assert plain == 3 * 4 * 9 * 65 * 65
    assert tf == 3 * 4 * 9 * 66 * 66  # ceil(65 / 6) * 6 = 66 positions a side
    dense = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    assert count_madds(dense, (65, 65), convention="tf")["madds"] == count_madds(dense, (65, 65))["madds"]


def test_command_prints_table_then_json():
    result = run_script("tools/complexity.py", "convention=tf", "backbone=xception65", "os=16", "data=voc")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert "Multiply-Adds" in lines[1] and lines[-2].split()[0] == "total"
    summary = json.loads(lines[-1])
    assert abs(summary["madds"] / 54.17e9 - 1) < 0.005
    assert summary["params"] == sum(p.numel() for p in model_for("xception65", 16, 16, True, True).parameters())


def test_a_model_on_the_meta_device_is_counted_in_place_and_keeps_its_modes():
    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1, bias=False), torch.nn.BatchNorm2d(4))
    model[1].eval()  # a frozen batch norm inside a training model
    assert count_madds(model, (8, 8))["madds"] == 3 * 4 * 9 * 8 * 8
    assert model.training and not model[1].training and model[0].weight.is_meta


def test_by_module_table_for_xception65(capsys, monkeypatch):
    """The Done-when command: the per-module table with separable savings, whose rows add up to
    the model's total to the last multiply-add."""
    code, stderr, stdout = run_entry("tools/complexity.py", "backbone=xception65", "os=16", "complexity.by_module=true",
                                     capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 0, stderr[-2000:]
    summary = json.loads(stdout.strip().splitlines()[-1])
    table = summary["by_module"]
    assert sum(row["madds"] for row in table["rows"]) == table["madds"] == summary["madds"]
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("module"))
    assert "as standard" in lines[header] and "saving" in lines[header]
    printed = lines[header + 1: header + 1 + len(table["rows"]) + 1]
    assert printed[-1].split()[0] == "total" and f"{summary['madds']:,}" in printed[-1]
    rate6 = next(line for line in printed if line.startswith("aspp 3x3 rate 6"))
    assert "591,022,080" in rate6 and rate6.endswith("8.69x")
    assert table["standard_madds"] / table["madds"] > 8  # the whole model, separable convs as standard


@pytest.mark.parametrize("args, message", [
    (["complexity.by_module=yes"], "complexity.by_module=yes is not allowed; allowed: true, false"),
    (["complexity.by_module=true", "convention=tf"], "complexity.by_module=true is not allowed with convention=tf; "
                                                     "allowed: convention=plain"),
])
def test_bad_complexity_value_is_one_line(args, message, capsys, monkeypatch):
    code, stderr = run_entry("tools/complexity.py", *args, capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, message)
