"""model.init_from: a new run on other classes starts from a trained model's weights, copying
what fits by name and shape and re-initialising the rest; another architecture is refused."""

import numpy as np
import pytest
import torch

from deeplab.builders.checkpoint import load_checkpoint
from deeplab.builders.init_from import init_from
from deeplab.model import DeepLab

from ..conftest import ROOT, TINY_NET, assert_one_line_error, run_entry
from ..data.layouts import save_index, save_rgb, scene

FIXTURES = ROOT / "tests" / "fixtures" / "checkpoint_v0"
TINY = {"backbone": "tu-test_resnet", "aspp": {"channels": 16},
        "decoder": {"channels": 16, "low_level_channels": 8, "num_convs": 2, "separable": True}}


def write_folder(root, count: int = 6):
    """A data=folder set of three classes (sky, road, car), four images to train, two to validate."""
    for i in range(count):
        image, mask = scene(i, 40, 56)
        save_rgb(root / "images" / f"im{i}.png", image)
        save_index(root / "masks" / f"im{i}.png", mask)
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("".join(f"im{i}\n" for i in range(count - 2)))
    (root / "splits" / "val.txt").write_text(f"im{count - 2}\nim{count - 1}\n")
    return root


def folder_run(root, run_dir, *extra):
    # recipe=paper: the head of the synthetic run it starts from (data=folder names recipe=small_data)
    return ("train.py", "data=folder", "recipe=paper", f"data.root={root}", "data.num_classes=3",
            "data.class_names=[sky,road,car]",
            "data.crop_size=32", "data.batch_size=2", "data.num_workers=0", "logger=none", "trainer.max_steps=1",
            f"hydra.run.dir={run_dir}", *extra)


def test_a_run_on_three_classes_starts_from_a_five_class_run(trained_run, tmp_path, capsys, monkeypatch):
    root, first = write_folder(tmp_path / "mine"), tmp_path / "first.pt"
    code, stderr, stdout = run_entry(
        *folder_run(root, tmp_path / "run", *TINY_NET, f"model.init_from={trained_run}",
                    "+callbacks.probe._target_=tests.training.probes.SaveWeightsAtStart",
                    f"+callbacks.probe.path={first}"), capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 0, stderr[-3000:]
    stored = load_checkpoint(trained_run / "checkpoints" / "best.ckpt")["state_dict"]
    source = {k.removeprefix("model."): v for k, v in stored.items() if k.startswith("model.")}
    loaded = len(source) - 2
    assert (f"init_from: {loaded} tensors loaded, 2 re-initialised: classifier.weight [3, 16, 1, 1] "
            "(was [5, 16, 1, 1]), classifier.bias [3] (was [5])") in stdout
    start = torch.load(first, weights_only=True)
    assert start.keys() == source.keys()
    for key, tensor in start.items():  # before the first step: the source's tensors, but the classifier
        assert torch.equal(tensor, source[key]) == (not key.startswith("classifier.")), key
    assert any(k.startswith("encoder.") for k in start)


def test_init_from_composes_with_a_finetuning_schedule(trained_run, tmp_path, capsys, monkeypatch):
    """The new classifier trains first with the loaded encoder frozen: the encoder stays the source's."""
    root, run_dir = write_folder(tmp_path / "mine"), tmp_path / "run"
    frozen = "finetune.stages=[{start_epoch:0,trainable:[aspp,decoder,head],freeze_bn:true}]"
    code, stderr, stdout = run_entry(*folder_run(root, run_dir, *TINY_NET, f"model.init_from={trained_run}",
                                                 "finetune=staged", frozen), capsys=capsys, monkeypatch=monkeypatch,
                                     stdout=True)
    assert code == 0, stderr[-3000:]
    assert "init_from: " in stdout and "finetune: stage 0" in stdout + stderr
    source = load_checkpoint(trained_run / "checkpoints" / "best.ckpt")["state_dict"]
    trained = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]
    encoder = [k for k in trained if k.startswith("model.encoder.")]
    assert encoder and all(torch.equal(trained[k], source[k]) for k in encoder)
    assert not torch.equal(trained["model.aspp.project.conv.weight"], source["model.aspp.project.conv.weight"])


def test_another_backbone_is_refused_in_one_line(trained_run, tmp_path, capsys, monkeypatch):
    root = write_folder(tmp_path / "mine")
    code, stderr = run_entry(*folder_run(root, tmp_path / "run", "backbone=xception",
                                         f"model.init_from={trained_run}"), capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"model.init_from={trained_run}: only ")
    assert "(it holds backbone tu-test_resnet, output stride 16); it is another architecture than " \
           "model.backbone.name=tu-xception65" in stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("path, message", [
    ("{tmp}/nowhere.ckpt", "model.init_from={tmp}/nowhere.ckpt does not exist"),
    ("{tmp}", "model.init_from={tmp} is a folder without checkpoints/best.ckpt or checkpoints/last.ckpt"),
    ("{tmp}/numbers.pt", "model.init_from={tmp}/numbers.pt holds no state dict"),
    ("{tmp}/notes.txt", "model.init_from={tmp}/notes.txt is not a PyTorch checkpoint"),
])
def test_a_bad_source_is_one_line(path, message, tmp_path, capsys, monkeypatch):
    torch.save({"numbers": [1, 2, 3]}, tmp_path / "numbers.pt")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    root = write_folder(tmp_path / "mine")
    code, stderr = run_entry(*folder_run(root, tmp_path / "run", *TINY_NET, f"model.init_from={path}".format(
        tmp=tmp_path)), capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, message.format(tmp=tmp_path))


def test_a_plain_state_dict_and_another_output_stride(tmp_path):
    torch.manual_seed(0)
    source = DeepLab(num_classes=21, output_stride=16, **TINY)
    torch.save(source.state_dict(), tmp_path / "plain.pt")
    torch.save({f"model.{k}": v for k, v in source.state_dict().items()}, tmp_path / "prefixed.pt")
    for name in ("plain.pt", "prefixed.pt"):
        target = DeepLab(num_classes=21, output_stride=8, **TINY)  # the rates have no weights
        line, fresh = init_from(target, tmp_path / name)
        assert fresh == [] and line == f"init_from: {len(source.state_dict())} tensors loaded, 0 re-initialised"
        assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())


def test_deeplabv3_into_deeplabv3plus_reinitialises_the_decoder_only(tmp_path):
    torch.manual_seed(0)
    source = DeepLab(num_classes=21, **{**TINY, "decoder": None})
    torch.save(source.state_dict(), tmp_path / "v3.pt")
    target = DeepLab(num_classes=21, **TINY)
    line, fresh = init_from(target, tmp_path / "v3.pt")
    decoder = [k for k in target.state_dict() if k.startswith("decoder.")]
    assert [f.split()[0] for f in fresh] == decoder and all(f.endswith("(not in the source)") for f in fresh)
    assert line.startswith(f"init_from: {len(source.state_dict())} tensors loaded, {len(decoder)} re-initialised: "
                           "decoder.") and line.endswith(f", and {len(decoder) - 6} more")


def test_a_checkpoint_with_positional_names_loads_whole():
    """The pre-rename checkpoints (tests/fixtures/checkpoint_v0) match by their current names."""
    stored = load_checkpoint(FIXTURES / "separable.ckpt")["state_dict"]
    target = DeepLab(num_classes=5, **TINY)
    line, fresh = init_from(target, FIXTURES / "separable.ckpt")
    assert fresh == [] and line == f"init_from: {len(target.state_dict())} tensors loaded, 0 re-initialised"
    weight = next(k for k in stored if k.endswith("aspp.branches.1.0.weight"))
    assert torch.equal(target.state_dict()["aspp.branches.1.conv_dw.weight"], stored[weight])
    assert np.isfinite(target.classifier.weight.detach().numpy()).all()
