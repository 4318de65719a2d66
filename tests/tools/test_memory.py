"""tools/memory.py as a user runs it: the composed config's step memory and the batch that fits."""

import json

from deeplab.inference.memory import total_bytes

from ..conftest import SMALL, TINY_NET, assert_one_line_error, run_entry


def memory(capsys, monkeypatch, *args) -> tuple[int, str, dict | None]:
    code, stderr, stdout = run_entry("tools/memory.py", *SMALL, *TINY_NET, "data.crop_size=96", *args,
                                     capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    lines = stdout.strip().splitlines()
    return code, stderr, json.loads(lines[-1]) if code == 0 else None


def test_the_table_and_the_largest_batch_within_the_budget(capsys, monkeypatch):
    code, stderr, plain = memory(capsys, monkeypatch, "data.batch_size=4", "memory.budget_gb=0.05")
    assert code == 0, stderr[-2000:]
    assert plain["total_bytes"] == total_bytes(plain, 4)
    largest = plain["largest_batch_size"]
    assert largest > 4 and total_bytes(plain, largest) <= 0.05 * 2**30 < total_bytes(plain, largest + 1)
    assert 2 * plain["grads"] <= plain["optimizer"] < 2.01 * plain["grads"]  # AdamW: two moments a weight, a step count
    code, stderr, lean = memory(capsys, monkeypatch, "data.batch_size=4", "memory.budget_gb=0.05",
                                "model.activation_checkpointing=true", "trainer.precision=bf16-mixed")
    assert code == 0, stderr[-2000:]
    assert lean["activations_per_image"] < plain["activations_per_image"] and lean["largest_batch_size"] > largest


def test_bad_budget_and_precision_are_one_line(capsys, monkeypatch):
    code, stderr, _ = memory(capsys, monkeypatch, "memory.budget_gb=0")
    assert_one_line_error(code, stderr, "memory.budget_gb=0 is not allowed; allowed: a number > 0 (GiB")
    code, stderr, _ = memory(capsys, monkeypatch, "trainer.precision=transformer-engine")
    assert_one_line_error(code, stderr, "trainer.precision=transformer-engine is not allowed in tools/memory.py; "
                                        "allowed: 32-true, 32, bf16-mixed")


def test_auto_precision_is_counted_as_bf16_and_said(capsys, monkeypatch):
    code, stderr, auto = memory(capsys, monkeypatch, "trainer.precision=auto")
    assert code == 0, stderr[-2000:]
    assert auto["precision"] == "bf16-mixed"
    code, stderr, bf16 = memory(capsys, monkeypatch, "trainer.precision=bf16-mixed")
    assert auto["total_bytes"] == bf16["total_bytes"]
