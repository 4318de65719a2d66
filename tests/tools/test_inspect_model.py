"""tools/inspect_model.py on a small checkpoint: feature maps, and receptive fields that widen with
the atrous rate, at OS8 and OS16."""

import json

import pytest
from PIL import Image

from ..conftest import assert_one_line_error, run_entry


@pytest.mark.slow
def test_pictures_and_radii_that_grow_with_the_rate(trained_run, small_synthetic, tmp_path, capsys, monkeypatch):
    images = small_synthetic / "synthetic_voc" / "JPEGImages"
    out = tmp_path / "inspect"
    code, stderr, stdout = run_entry("tools/inspect_model.py", f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}",
                                     f"input={images}", "num_images=2", "size=577", f"output={out}",
                                     capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 0, stderr[-2000:]
    for name in ("features.png", "receptive_field.png"):
        with Image.open(out / name) as picture:
            assert picture.size[0] > 400 and picture.size[1] > 200
    report = json.loads((out / "receptive_field.json").read_text())
    assert set(report["output_strides"]) == {"8", "16"} and len(report["images"]) == 2
    for stride, entry in report["output_strides"].items():
        rates = entry["rates"]
        assert [r * int(stride) for r in rates] == [96, 192, 288]  # the same reach at both strides
        radii = [entry["aspp_radius95"]["1x1"]] + [entry["aspp_radius95"][f"rate {r}"] for r in rates]
        assert radii == sorted(radii) and radii[0] < radii[1] < radii[2] < radii[3], (stride, radii)
        assert radii[1] > 96 * 0.9 and radii[3] > 288 * 0.9  # the outer taps hold most of the mass
    assert "OS8: 95% radius of the logits" in stdout and "OS16: 95% radius of the logits" in stdout


def test_bad_size_is_one_line(trained_run, tmp_path, capsys, monkeypatch):
    code, stderr = run_entry("tools/inspect_model.py", f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}",
                             f"input={tmp_path}", "size=8", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "size=8 is not allowed; allowed: an integer from 33 to 4096")
