"""bench.parts: each part of the model timed forward and backward on its own, with its arithmetic."""

import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from deeplab.model import DeepLab
from deeplab.tools.step_parts import time_parts

from ..conftest import SMALL, TINY_NET, run_entry


def test_the_parts_add_up_to_the_model(tmp_path):
    torch.manual_seed(0)
    model = DeepLab(4, "tu-test_resnet", output_stride=16, decoder={"num_convs": 2})
    images = torch.randn(2, 3, 65, 65)
    rows = {row["part"]: row for row in time_parts(model, images, None, repeats=2, warmup=1)}
    assert list(rows) == ["encoder", "aspp", "decoder", "classifier", "decoder.refine.0", "decoder.refine.1"]
    assert all(p.grad is None for p in model.parameters())  # timed calls leave no gradients behind
    counter = FlopCounterMode(display=False)
    with counter:  # a whole training forward and backward, the images needing no gradient
        model(images).sum().backward()
    top = [rows[name] for name in ("encoder", "aspp", "decoder", "classifier")]
    assert sum(r["madds"] for r in top) == counter.get_total_flops() // 2  # nothing counted twice or left out
    refine = rows["decoder.refine.0"]["madds"] + rows["decoder.refine.1"]["madds"]
    assert 0 < refine < rows["decoder"]["madds"]  # the refinement convs are within the decoder
    assert rows["decoder.refine.0"]["madds"] > rows["decoder.refine.1"]["madds"]  # 256 + 48 channels in, not 256
    for row in rows.values():
        assert row["seconds"] > 0 and row["top_ops"] and row["top_ops"][0]["self_ms"] > 0


def test_bench_prints_and_writes_the_parts(tmp_path, small_synthetic, capsys, monkeypatch):
    output = tmp_path / "bench.json"
    code, stderr, stdout = run_entry("tools/bench.py", *SMALL, *TINY_NET, f"paths.data_dir={small_synthetic}",
                                     "data.batch_size=2", "bench.input_size=[65,65]", "bench.warmup=1",
                                     "bench.iterations=2", "bench.repeats=1", "bench.loader_batches=0",
                                     "bench.parts=true", f"bench.output={output}", capsys=capsys,
                                     monkeypatch=monkeypatch, stdout=True)
    assert code == 0, stderr[-3000:]
    parts = [row["part"] for row in json.loads(output.read_text())["parts"]]
    assert parts[:4] == ["encoder", "aspp", "decoder", "classifier"]
    assert "time/MAdds" in stdout and "decoder.refine.0" in stdout
