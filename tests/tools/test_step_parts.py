"""bench.parts: each part of the model timed forward and backward on its own, with its arithmetic."""

import json

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deeplab.model import DeepLab
from deeplab.tools.step_parts import time_parts, training_flop_counter

from ..conftest import SMALL, TINY_NET, run_entry


def test_the_parts_add_up_to_the_model(tmp_path):
    torch.manual_seed(0)
    model = DeepLab(4, "tu-test_resnet", output_stride=16, decoder={"num_convs": 2})
    images = torch.randn(2, 3, 65, 65)
    rows = {row["part"]: row for row in time_parts(model, images, None, repeats=2, warmup=1, top_ops=100)}
    assert list(rows) == ["encoder", "aspp", "decoder", "classifier", "decoder.refine.0", "decoder.refine.1"]
    assert all(p.grad is None for p in model.parameters())  # timed calls leave no gradients behind
    counter = training_flop_counter()
    with counter:  # a whole training forward and backward, the images needing no gradient
        model(images).sum().backward()
    top = [rows[name] for name in ("encoder", "aspp", "decoder", "classifier")]
    assert sum(r["madds"] for r in top) == counter.get_total_flops() // 2  # nothing counted twice or left out
    refine = rows["decoder.refine.0"]["madds"] + rows["decoder.refine.1"]["madds"]
    assert 0 < refine < rows["decoder"]["madds"]  # the refinement convs are within the decoder
    assert rows["decoder.refine.0"]["madds"] > rows["decoder.refine.1"]["madds"]  # 256 + 48 channels in, not 256
    ops = [op["op"] for op in rows["decoder.refine.1"]["top_ops"]]
    for kind in ("depthwise", "1x1"):  # each kind of the separable conv's two, forward and backward
        assert f"aten::convolution_backward {kind}" in ops and f"aten::mkldnn_convolution {kind}" in ops, ops
    for row in rows.values():
        assert row["seconds"] > 0 and row["top_ops"] and row["top_ops"][0]["self_ms"] > 0


@pytest.mark.slow
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


def test_a_depthwise_convs_backward_counts_twice_its_forward():
    conv = nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False)
    x = torch.randn(2, 64, 16, 16, requires_grad=True)
    forward = 2 * 64 * 9 * 16 * 16 * 2  # FLOPs: 9 multiply-adds an output value
    counter = training_flop_counter()
    with counter:
        conv(x).sum().backward()
    assert counter.get_total_flops() == 3 * forward  # forward, input gradient, weight gradient
    plain = FlopCounterMode(display=False)
    with plain:
        conv(x).sum().backward()
    # torch's own count takes the weight gradient as a dense conv (64 times too many); when this
    # fails, torch counts grouped convs right and training_flop_counter's mapping can go
    assert plain.get_total_flops() == 2 * forward + 64 * forward
