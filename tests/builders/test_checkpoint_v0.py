"""Checkpoints written before the model's parts had names (tests/fixtures/checkpoint_v0) still
load: the same logits, the same metrics in eval.py, and a resumed run continues from them."""

import json

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from deeplab.builders.checkpoint import CONFIG_KEY, load_checkpoint, model_from_checkpoint

from ..conftest import ROOT, run_train

FIXTURES = ROOT / "tests" / "fixtures" / "checkpoint_v0"
# The model the fixtures were trained with (see their README), as train.py overrides.
MODEL = ("model.backbone.name=tu-test_resnet", "model.aspp.channels=16", "model.decoder.channels=16",
         "model.decoder.low_level_channels=8", "optim=sgd", "data.batch_size=4", "data.num_workers=0",
         "data.prepare.num_train=8", "data.prepare.num_val=4", "logger=none")


@pytest.mark.parametrize("name", ["separable", "plain"])
def test_old_keys_load_to_the_same_logits(name):
    expected = torch.load(FIXTURES / "logits.pt", weights_only=True)
    model, _ = model_from_checkpoint(FIXTURES / f"{name}.ckpt")
    stored = load_checkpoint(FIXTURES / f"{name}.ckpt")["state_dict"]
    assert any(".branches.1.0.weight" in k for k in stored)  # really the old, positional names
    assert "aspp.branches.1.conv_dw.weight" in model.state_dict() or "aspp.branches.1.conv.weight" in model.state_dict()
    with torch.no_grad():
        assert torch.equal(model(expected["input"]), expected[name])


@pytest.fixture(scope="module")
def old_data(tmp_path_factory):
    """The synthetic set the separable fixture was trained and evaluated on, written anew."""
    config = OmegaConf.create(load_checkpoint(FIXTURES / "separable.ckpt")[CONFIG_KEY])
    root = tmp_path_factory.mktemp("old") / "synthetic_voc"
    config.data.prepare.root = str(root)
    instantiate(config.data.prepare)()
    return root


def test_eval_py_reads_an_old_checkpoint(tmp_path, old_data):
    result = run_train(tmp_path / "eval", f"ckpt_path={FIXTURES / 'separable.ckpt'}", f"data.root={old_data}",
                       script="eval.py")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    # What eval.py reported for this checkpoint with the code that wrote it (commit 9b9c9ce).
    assert metrics["pixel_acc"] == pytest.approx(0.7674903834945798, abs=1e-9)
    assert metrics["mIoU"] == pytest.approx(0.15349807669891596, abs=1e-9)


def test_an_old_checkpoint_resumes(tmp_path, old_data):
    run_dir = tmp_path / "run"
    result = run_train(run_dir, *MODEL, f"data.root={old_data}", f"ckpt_path={FIXTURES / 'separable.ckpt'}",
                       "trainer.max_epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 4  # the fixture's 2 steps, then the second epoch's 2
    resumed = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert "model.aspp.branches.1.conv_pw.weight" in resumed["state_dict"]  # saved under today's names
