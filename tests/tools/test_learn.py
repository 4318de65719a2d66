"""tools/learn.py: this project's training against smp's DeepLabV3Plus in a plain loop, on the
same draws, with one metric; a table a seed and the mean over seeds."""

import json

import pytest
import torch

from deeplab.builders.model import build_model, resolve_normalisation
from deeplab.tools.learn import SMP_HEAD, matched, plain_loader, smp_deeplab
from deeplab.training.datamodule import build_datamodule

from ..conftest import TINY_NET, assert_one_line_error, compose_config, run_entry
from ..data.layouts import write_camvid

CAMVID_TINY = ("data=camvid", "data.image_size=[32,48]", "data.crop_size=32", "data.batch_size=2",
               "data.num_workers=0", "trainer.precision=32-true", "logger=none", "backbone=resnet18")


@pytest.fixture(scope="module")
def camvid(tmp_path_factory):
    return write_camvid(tmp_path_factory.mktemp("learn") / "CamVid", {"train": 6, "val": 2, "test": 3})


def test_the_plain_loop_draws_what_train_py_draws(camvid):
    cfg = compose_config(*CAMVID_TINY, f"data.root={camvid}", "aug=crop_flip")
    resolve_normalisation(cfg)  # as every entry point does: the crop's padding is the mean pixel
    datamodule = build_datamodule(cfg.data, cfg.aug, seed=7)
    datamodule.setup("fit")
    ours = datamodule.train_dataloader()
    plain = plain_loader(cfg, seed=7)
    for epoch in (0, 1):  # each epoch its own order and crops, alike in both
        ours.sampler.set_epoch(epoch)
        plain.sampler.set_epoch(epoch)
        pairs = list(zip(ours, plain, strict=True))
        assert len(pairs) == 3
        for a, b in pairs:
            assert a["name"] == b["name"]
            assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    assert plain_loader(cfg, seed=8).sampler.seed == 8


def test_match_gives_both_models_one_head():
    cfg = compose_config("backbone=resnet18")
    ours, head = matched(cfg, "smp")
    assert list(ours.model.aspp.rates) == SMP_HEAD["rates"] and ours.model.aspp.dropout == SMP_HEAD["dropout"]
    assert ours.model.decoder.num_convs == SMP_HEAD["num_convs"] and head == {}
    assert ours.model.aspp.depthwise_bn_relu is False and ours.model.decoder.depthwise_bn_relu is False
    assert ours.model.aspp.post_conv is True
    assert list(cfg.model.aspp.rates) == [6, 12, 18]  # the composed config is left as it was
    paper, head = matched(cfg, "paper")
    assert list(paper.model.aspp.rates) == [6, 12, 18] and paper.model.decoder.num_convs == 2
    peer = smp_deeplab(cfg, head)
    aspp = peer.decoder.aspp[0]
    rates = [branch[0][0].dilation[0] for branch in aspp.convs[1:4]]
    assert rates == [6, 12, 18] and aspp.project[-1].p == pytest.approx(0.1)
    separable = aspp.convs[1][0]  # smp's SeparableConv2d: the depthwise conv feeds the pointwise one directly
    assert [type(m).__name__ for m in separable] == ["Conv2d", "Conv2d"] and separable[0].groups > 1
    default = smp_deeplab(cfg, matched(cfg, "none")[1])
    assert [b[0][0].dilation[0] for b in default.decoder.aspp[0].convs[1:4]] == SMP_HEAD["rates"]


def test_match_smp_builds_smps_head_part_for_part():
    """learn.match=smp: this project's ASPP (with its post_conv) and decoder hold as many weights,
    in the same kinds of layers, as smp's DeepLabV3Plus decoder, and the encoders are alike."""
    cfg = compose_config("backbone=resnet18")
    matched_cfg = matched(cfg, "smp")[0]
    ours = build_model(matched_cfg.model, matched_cfg.data.num_classes)
    peer = smp_deeplab(cfg, {})

    def census(*modules):
        return sorted((type(m).__name__, sum(p.numel() for p in m.parameters(recurse=False)))
                      for module in modules for m in module.modules() if list(m.parameters(recurse=False)))

    assert census(ours.aspp) == census(peer.decoder.aspp)
    assert census(ours.decoder, ours.classifier) == census(peer.decoder.block1, peer.decoder.block2,
                                                             peer.segmentation_head)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in peer.parameters())


@pytest.mark.slow
def test_learn_writes_a_row_a_seed_and_model(tmp_path, camvid, capsys, monkeypatch):
    out = tmp_path / "learn"
    code, stderr, stdout = run_entry("tools/learn.py", *CAMVID_TINY, *TINY_NET, f"data.root={camvid}",
                                     f"hydra.run.dir={out}", "trainer.max_epochs=1", "learn.seeds=[3,4]",
                                     capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 0, stderr[-3000:]
    result = json.loads((out / "learn.json").read_text())
    assert [r["seed"] for r in result["runs"]] == [3, 4]
    for run in result["runs"]:
        for model in ("deeplab", "smp"):
            figures = run[model]
            assert 0 <= figures["mIoU"] <= 1 and 0 <= figures["pixel_acc"] <= 1
            assert set(figures["per_class_iou"]) == set(result["class_names"])
            assert figures["train_images_per_sec"] > 0 and figures["wall_seconds"] > 0
        assert (out / f"seed{run['seed']}" / "deeplab" / "checkpoints" / "last.ckpt").is_file()
    for model in ("deeplab", "smp"):
        values = [r[model]["mIoU"] for r in result["runs"]]
        assert result["summary"][model]["mIoU_mean"] == pytest.approx(sum(values) / 2)
    assert result["config"]["model"]["aspp"]["rates"] == SMP_HEAD["rates"]  # learn.match=smp by default
    table = (out / "learn.md").read_text()
    rows = [line.split(" | ")[:2] for line in table.splitlines() if line.startswith("| 3 ") or line.startswith("| 4 ")]
    assert rows == [["| 3", "deeplab"], ["| 3", "smp"], ["| 4", "deeplab"], ["| 4", "smp"]]
    assert "mean test mIoU" in table
    # the same folder again: refused before anything trains, the first run's files untouched
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    code, stderr = run_entry("tools/learn.py", *CAMVID_TINY, *TINY_NET, f"data.root={camvid}", f"hydra.run.dir={out}",
                             "trainer.max_epochs=1", "learn.seeds=[3]", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"hydra.run.dir={out} holds an earlier tools/learn.py run (seed3, seed4)")
    assert {p: p.stat().st_mtime_ns for p in before} == before


@pytest.mark.parametrize("override, message", [
    ("learn.match=both", "learn.match=both is not allowed; allowed: smp, paper, none"),
    ("trainer.max_steps=5", "trainer.max_steps=5: tools/learn.py trains both models for trainer.max_epochs"),
    ("os=32", "needs os=8 or os=16"),
    ("learn.models=[deeplab,deeplab]", "learn.models=['deeplab', 'deeplab'] is not allowed; allowed: a list of "
                                       "deeplab, smp, each once"),
])
def test_bad_settings_are_one_line(tmp_path, camvid, capsys, monkeypatch, override, message):
    code, stderr = run_entry("tools/learn.py", *CAMVID_TINY, *TINY_NET, f"data.root={camvid}",
                             f"hydra.run.dir={tmp_path / 'out'}", override, capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, message)
