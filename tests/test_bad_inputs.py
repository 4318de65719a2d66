"""The catalogue of bad inputs: each one is answered by one `error:` line that names the problem,
a non-zero exit status, no traceback, and nothing written into the data or an existing run.

The entry points run in this process (as `python train.py ...` would, through their __main__
block) to keep some thirty cases fast; the signals are sent to real subprocesses elsewhere."""

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from .conftest import SMALL, TINY_NET, assert_one_line_error, run_entry
from .data.layouts import save_palette, write_voc

WORK = ("logger=none", "trainer.max_epochs=1")


def snapshot(*folders: Path) -> dict[str, str]:
    return {str(p): hashlib.sha1(p.read_bytes()).hexdigest() for folder in folders if folder.exists()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    """A small VOC layout, 21 classes, that every data case copies and then breaks."""
    rng = np.random.default_rng(0)
    masks = {f"img{i}": rng.integers(0, 3, (48, 64)).astype(np.uint8) for i in range(6)}
    return write_voc(tmp_path_factory.mktemp("voc") / "VOC2012",
                     {"train": [f"img{i}" for i in range(4)], "val": ["img4", "img5"]}, masks)


@pytest.fixture(scope="module")
def standalone_ckpt(trained_run, tmp_path_factory) -> Path:
    """The trained run's last.ckpt, copied out of its run directory (resuming from a file in a run
    directory would continue that run)."""
    path = tmp_path_factory.mktemp("ckpt") / "model.ckpt"
    shutil.copy(trained_run / "checkpoints" / "last.ckpt", path)
    return path


def break_voc(voc: Path, tmp_path: Path, how: str) -> Path:
    root = tmp_path / "VOC2012"
    shutil.copytree(voc, root)
    if how == "missing_split":
        (root / "ImageSets" / "Segmentation" / "val.txt").unlink()
    elif how == "missing_image":
        (root / "JPEGImages" / "img2.jpg").unlink()
    elif how == "unreadable_image":
        (root / "JPEGImages" / "img1.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    elif how == "mask_size":
        save_palette(root / "SegmentationClass" / "img3.png", np.zeros((20, 30), np.uint8))
    elif how == "mask_values":
        mask = np.zeros((48, 64), np.uint8)
        mask[:4, :4] = 30
        save_palette(root / "SegmentationClass" / "img0.png", mask)
    elif how == "empty_split":
        (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n")
    return root


DATA_CASES = {  # how the VOC copy is broken: the words the error must contain
    "missing_split": "split list {root}/ImageSets/Segmentation/val.txt not found; splits present: ['train']",
    "missing_image": "missing image: {root}/JPEGImages/img2.jpg",
    "unreadable_image": "{root}/JPEGImages/img1.jpg: cannot read the image",
    "mask_size": "{root}/SegmentationClass/img3.png: mask is 30x20, image {root}/JPEGImages/img3.jpg is 64x48",
    "mask_values": "{root}/SegmentationClass/img0.png: mask values [30] outside 0..20 and not the void 255",
    "empty_split": "split list {root}/ImageSets/Segmentation/train.txt is empty",
}


@pytest.mark.parametrize("how", list(DATA_CASES))
def test_broken_dataset(how, voc, tmp_path, capsys, monkeypatch):
    root = break_voc(voc, tmp_path, how)
    before = snapshot(root)
    # two workers: an error raised in a DataLoader worker still reaches the user as one line
    code, stderr = run_entry("train.py", "data=voc", f"data.root={root}", "data.crop_size=32", "data.batch_size=2",
                             "data.num_workers=2", "backbone=resnet18", f"hydra.run.dir={tmp_path / 'run'}",
                             *WORK,
                               capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, DATA_CASES[how].format(root=root))
    assert snapshot(root) == before


@pytest.mark.parametrize("args, message", [
    (["data=voc", "data.root=/nonexistent/VOC2012"], "data.root=/nonexistent/VOC2012 does not exist; download"),
    (["data=voc", "data.root={empty}"], "split list {empty}/ImageSets/Segmentation/train.txt not found"),
    (["backbone=xceptoin"], "backbone=xceptoin is not allowed; allowed: mobilenet_v2, resnet101, resnet18, resnet50, "
                            "xception, xception65 (did you mean xception?)"),
    (["model.aspp.chanels=64"], "model.aspp.chanels is not a config key (did you mean model.aspp.channels?)"),
    (["os=12"], "os=12 is not allowed; allowed: 8, 16, 32"),
    (["optim.lr=-0.1"], "optim.lr=-0.1 is not allowed; allowed: a number > 0"),
    (["data.crop_size=5000"], "data.crop_size=5000 is not allowed; allowed: an integer from 16 to 4096"),
    (["data.batch_size=1"], "data.batch_size=1 is not allowed; allowed: an integer >= 2"),
    (["data.num_workers=-1"], "data.num_workers=-1 is not allowed; allowed: an integer >= 0"),
    (["hydra.run.dir={file}/run"], "hydra.run.dir={file}/run cannot be created: {file} is a file, not a folder"),
    (["ckpt_path={tmp}/missing.ckpt"], "ckpt_path={tmp}/missing.ckpt does not exist"),
    (["ckpt_path={file}"], "ckpt_path={file} is not a PyTorch checkpoint"),
    (["ckpt_path=last"], "ckpt_path=last: {tmp}/run/checkpoints/last.ckpt does not exist; give the run to resume"),
    (["ckpt_path={tmp}"], "ckpt_path={tmp} is a folder without checkpoints/last.ckpt"),
    (["seed=-1"], "seed=-1 is not allowed; allowed: an integer >= 0 and < 4294967296"),
    (["seed=4294967296"], "seed=4294967296 is not allowed; allowed: an integer >= 0 and < 4294967296"),
    (["callbacks.last_checkpoint.every_n_train_steps=0"], "callbacks.last_checkpoint.every_n_train_steps=0 is not "
                                                          "allowed; allowed: an integer >= 1"),
    (["trainer.max_steps=0"], "trainer.max_steps=0 is not allowed; allowed: -1 or an integer >= 1 (-1: no step limit)"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0 is not allowed; allowed: null, -1 or an integer >= 1 "
                                "(-1 or null: no epoch limit)"),
    (["trainer.max_epochs=-1"], "trainer.max_epochs=-1 is not allowed; allowed: an integer >= 1 while "
                                "trainer.max_steps=-1"),
    (["trainer.max_epochs=null"], "trainer.max_epochs=null is not allowed; allowed: an integer >= 1 while "
                                  "trainer.max_steps=-1"),
    (["++trainer.limit_train_batches=0"], "trainer.limit_train_batches=0 is not allowed; allowed: null or an integer "
                                          ">= 1 or a number > 0 and <= 1 (batches, or a fraction of them)"),
    (["data.num_classes=4", "data.class_names=[a,b]"], "data.class_names=['a', 'b'] is not allowed; allowed: "
                                                        "exactly data.num_classes=4 names"),
    (["-m", "--cfg", "job"], "Only one of --run, --multirun, --cfg, --info and --shell_completion can be specified"),
    (["data.num_folds=3", "data.fold=3"], "data.fold=3 is not allowed; allowed: null, or 0 .. data.num_folds - 1 "
                                          "with data.num_folds set (0 .. 2)"),
    (["data.fold=0"], "data.fold=0 is not allowed; allowed: null, or 0 .. data.num_folds - 1 with data.num_folds set"),
    (["data.num_folds=1"], "data.num_folds=1 is not allowed; allowed: null or an integer >= 2"),
    (["loss.class_weights=[1,2]"], "loss.class_weights=[1, 2] is not allowed; allowed: exactly data.num_classes=5 "
                                   "numbers, or a weighting method"),
    (["loss.class_weights=median"], "loss.class_weights=median is not allowed; allowed: null, median_freq, "
                                    "inverse_freq, inverse_sqrt_freq or a list of numbers >= 0 (a list: one weight "
                                    "a class)"),
    (["loss.top_k_percent_pixels=0"], "loss.top_k_percent_pixels=0 is not allowed; allowed: a number > 0 and <= 1"),
    (["loss.hard_example_mining_step=-5"], "loss.hard_example_mining_step=-5 is not allowed; allowed: an integer >= 0"),
    (["sweep.prune=mean"], "sweep.prune=mean is not allowed; allowed: null, median (null: off)"),
    (["sweep.prune_after=-1"], "sweep.prune_after=-1 is not allowed; allowed: a number >= 0 (epochs)"),
    (["target_miou=80"], "target_miou=80 is not allowed; allowed: null or a number from 0 to 1 (null: off)"),
    (["dashboard.aug_preview=1"], "dashboard.aug_preview=1 is not allowed; allowed: true, false"),
    (["aug.scale_min=2"], "aug.scale_max=1.0 is not allowed; allowed: a number >= aug.scale_min=2"),
    (["aug=deeplab", "aug.scale_min=0"], "aug.scale_min=0 is not allowed; allowed: null or a number > 0"),
    (["aug=deeplab", "aug.scale_step=-0.25"], "aug.scale_step=-0.25 is not allowed; allowed: null or a number >= 0 "
                                              "(0: aug.scale_min only)"),
    (["aug=keras", "aug.flip=1.5"], "aug.flip=1.5 is not allowed; allowed: null or a number from 0 to 1 "
                                    "(a probability)"),
    (["dashboard.every_n_epochs=0"], "dashboard.every_n_epochs=0 is not allowed; allowed: an integer >= 1"),
    (["sweep.prune=median"], "sweep.prune=median compares the jobs of a sweep: run with -m (a multirun), or leave "
                             "sweep.prune=null"),
])
def test_bad_value_or_path(args, message, tmp_path, small_synthetic, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    names = {"empty": tmp_path / "empty", "file": tmp_path / "notes.txt", "tmp": tmp_path}
    data = small_synthetic / "synthetic_voc"
    before = snapshot(data)
    synthetic = [] if "data=voc" in args else [f"paths.data_dir={small_synthetic}", *SMALL]
    run_dir = [] if any(a.startswith("hydra.run.dir=") for a in args) else [f"hydra.run.dir={tmp_path / 'run'}"]
    code, stderr = run_entry("train.py", *synthetic, *WORK, *[a.format(**names) for a in args], *run_dir,
                             capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, message.format(**names))
    assert snapshot(data) == before


@pytest.mark.parametrize("args, message", [
    (["data.num_classes=4", "data.class_names=[a,b,c,d]"], "data.num_classes=4 but ckpt_path={ckpt} was trained "
                                                            "with 5 classes"),
    (["backbone=resnet50"], "ckpt_path={ckpt} holds another architecture (model.backbone.name=tu-test_resnet); "
                            "this run builds model.backbone.name=resnet50"),
    ([*TINY_NET, "os=8"], "ckpt_path={ckpt} holds another architecture (model.output_stride=16); this run builds "
               "model.output_stride=8; a resume continues the same network (evaluate at another output stride with "
               "eval.py eval.output_stride=8"),
    ([*TINY_NET, "model.aspp.rates=[12,24,36]"], "holds another architecture (model.aspp={{'channels': 16, "
                                                  "'rates': [6, 12, 18]"),
    ([*TINY_NET[:2], "decoder=deeplabv3"], "holds another architecture (model.decoder={{'low_level_channels': 8"),
    ([*TINY_NET, "data.in_channels=4", "data.mean=[0.5,0.5,0.5,0.5]", "data.std=[0.2,0.2,0.2,0.2]"],
     "holds another architecture (data.in_channels=3); this run builds data.in_channels=4"),
])
def test_checkpoint_of_another_model(args, message, standalone_ckpt, tmp_path, small_synthetic, capsys,
                                     monkeypatch):
    before = snapshot(standalone_ckpt.parent)
    code, stderr = run_entry("train.py", f"ckpt_path={standalone_ckpt}", *args, f"hydra.run.dir={tmp_path / 'run'}",
                             f"paths.data_dir={small_synthetic}", *SMALL, *WORK, capsys=capsys,
                             monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, message.format(ckpt=standalone_ckpt))
    assert snapshot(standalone_ckpt.parent) == before


class CreatesFile:
    """A pickle payload: unpickling it would create a file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.mark.parametrize("script", ["train.py", "eval.py", "predict.py"])
def test_checkpoint_that_would_run_code_is_refused(script, standalone_ckpt, tmp_path, small_synthetic, capsys,
                                                   monkeypatch):
    checkpoint = torch.load(standalone_ckpt, map_location="cpu", weights_only=True)
    planted = tmp_path / "code_ran"
    checkpoint["payload"] = CreatesFile(planted)  # a real checkpoint, plus the payload
    evil = tmp_path / "evil.ckpt"
    torch.save(checkpoint, evil)
    images = small_synthetic / "synthetic_voc" / "JPEGImages"
    extra = {"train.py": [f"paths.data_dir={small_synthetic}", *SMALL, *WORK], "eval.py": [],
             "predict.py": [f"input={images}", f"output={tmp_path / 'masks'}"]}[script]
    code, stderr = run_entry(script, f"ckpt_path={evil}", f"hydra.run.dir={tmp_path / 'run'}", *extra,
                             capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"ckpt_path={evil} is refused: loading it would call ")
    assert not planted.exists()


def test_full_traceback_on_request(tmp_path, small_synthetic, capsys, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(Exception, match="split list .* not found"):
        run_entry("train.py", "data=voc", f"data.root={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}", *WORK,
                  capsys=capsys, monkeypatch=monkeypatch)


def train_small(run_dir: Path, data_dir: Path, *extra: str, capsys, monkeypatch) -> tuple[int, str]:
    """train.py on the small synthetic set for one epoch, logging nothing, in run_dir."""
    return run_entry("train.py", f"hydra.run.dir={run_dir}", f"paths.data_dir={data_dir}", *SMALL, *WORK, *TINY_NET,
                     *extra, capsys=capsys, monkeypatch=monkeypatch)


def saved_last(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def test_disk_full_during_a_checkpoint_save(tmp_path, small_synthetic, capsys, monkeypatch):
    """The third save fails as a full disk fails, part-way through its write: the run stops with
    one line and the last.ckpt written before it is whole and loads."""
    from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

    save, calls = TorchCheckpointIO.save_checkpoint, []

    def fills_the_disk(self, checkpoint, path, storage_options=None):
        calls.append(path)
        if len(calls) == 3:
            Path(path).write_bytes(b"PK\x03\x04 half a zip")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", fills_the_disk)
    run_dir = tmp_path / "run"
    code, stderr = train_small(run_dir, small_synthetic, "callbacks.last_checkpoint.every_n_train_steps=2",
                               capsys=capsys, monkeypatch=monkeypatch)
    last = run_dir / "checkpoints" / "last.ckpt"
    assert_one_line_error(code, stderr, f"could not write checkpoint {last}: No space left on device; the previous "
                                        "one is kept")
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4  # the second save
    assert not list(last.parent.glob(".*partial"))


def test_nan_loss_stops_with_the_step_and_images(tmp_path, small_synthetic, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    code, stderr = train_small(run_dir, small_synthetic, "optim.lr=1e30",
                               "callbacks.last_checkpoint.every_n_train_steps=1", capsys=capsys,
                               monkeypatch=monkeypatch)
    # The first update throws the weights far out; the next loss is NaN.
    assert_one_line_error(code, stderr, "error: the loss is nan at step 1 (lr ")
    line = next(x for x in stderr.splitlines() if x.startswith("error:"))
    assert "on images train_" in line and f"then resume with ckpt_path={run_dir}" in line
    saved = saved_last(run_dir)
    assert saved["global_step"] == 1 and finite_network(saved)


def finite_network(checkpoint: dict) -> bool:
    return all(torch.isfinite(t).all() for k, t in checkpoint["state_dict"].items()
               if k.startswith("model.") and t.is_floating_point())


def test_weights_that_turn_infinite_are_not_saved(tmp_path, small_synthetic, capsys, monkeypatch):
    from deeplab.training.module import SegmentationModule

    step = SegmentationModule.optimizer_step

    def breaks_a_weight_at_step_3(self, *args, **kwargs):
        step(self, *args, **kwargs)
        if self.global_step == 2:  # the third update (counted from 0) leaves a weight infinite
            with torch.no_grad():
                next(self.model.parameters()).fill_(float("inf"))

    monkeypatch.setattr(SegmentationModule, "optimizer_step", breaks_a_weight_at_step_3)
    run_dir = tmp_path / "run"
    code, stderr = train_small(run_dir, small_synthetic, "callbacks.last_checkpoint.every_n_train_steps=1",
                               capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "error: the weights are not finite after step 3 (lr ")
    saved = saved_last(run_dir)
    assert saved["global_step"] == 2 and finite_network(saved)


def test_nan_loss_stops_before_backward(tmp_path, small_synthetic, capsys, monkeypatch):
    """A loss that turns NaN at step 3 (a stand-in for an overflow): the run stops with the step,
    learning rate and images, and last.ckpt is step 2's, finite."""
    from deeplab.training.module import SegmentationModule

    step = SegmentationModule.training_step

    def nan_at_step_3(self, batch, batch_idx):
        loss = step(self, batch, batch_idx)
        return loss * float("nan") if self.global_step == 3 else loss

    monkeypatch.setattr(SegmentationModule, "training_step", nan_at_step_3)
    run_dir = tmp_path / "run"
    code, stderr = train_small(run_dir, small_synthetic, "callbacks.last_checkpoint.every_n_train_steps=1",
                               capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "error: the loss is nan at step 3 (lr ")
    saved = saved_last(run_dir)
    assert saved["global_step"] == 3 and finite_network(saved)


@pytest.mark.slow
def test_gradient_clipping_bounds_every_update(tmp_path, small_synthetic, capsys, monkeypatch):
    """trainer.gradient_clip_val=0.05 (the guard the NaN messages point to): every step's gradient
    reaches the optimizer with a global norm of at most 0.05, where unclipped ones are larger."""
    norms = []
    step = torch.optim.AdamW.step

    def records_the_norm(self, closure=None):
        def closure_then_record():  # Lightning computes (and clips) the gradients inside the closure
            loss = closure()
            grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
            norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
            return loss
        return step(self, closure=closure_then_record)

    monkeypatch.setattr(torch.optim.AdamW, "step", records_the_norm)
    for clip in ("null", "0.05"):
        code, stderr = run_entry("train.py", f"hydra.run.dir={tmp_path / clip}", f"paths.data_dir={small_synthetic}",
                                 *SMALL, *WORK, *TINY_NET, "trainer.max_steps=4", f"trainer.gradient_clip_val={clip}",
                                 capsys=capsys, monkeypatch=monkeypatch)
        assert code == 0, stderr[-2000:]
    unclipped, clipped = norms[:4], norms[4:]
    assert len(clipped) == 4 and max(clipped) <= 0.05 * (1 + 1e-4) and min(unclipped) > 0.05, norms


def test_a_training_split_smaller_than_a_batch(voc, tmp_path, capsys, monkeypatch):
    """Training drops an incomplete last batch: one image and batches of two would train nothing
    and exit 0. It stops at start instead, naming the split, its size and the batch size."""
    root = shutil.copytree(voc, tmp_path / "VOC2012")
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("img0\n")
    code, stderr = run_entry("train.py", "data=voc", f"data.root={root}", "data.crop_size=32", "data.batch_size=2",
                             "data.num_workers=0", "backbone=resnet18", f"hydra.run.dir={tmp_path / 'run'}", *WORK,
                             capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "data.train_split=train has 1 image, fewer than data.batch_size=2 a step")
    assert code == 2
    assert not (tmp_path / "run" / "summary.json").exists()


ENTRY_POINTS = ["train.py", "eval.py", "predict.py", "tools/check_data.py", "tools/prepare_data.py", "tools/bench.py",
                "tools/bench_loader.py", "tools/complexity.py", "tools/memory.py", "tools/export.py",
                "tools/show_aug.py", "tools/inspect_model.py"]


@pytest.mark.parametrize("script", ENTRY_POINTS)
def test_every_entry_point_checks_the_class_count(script, tmp_path, small_synthetic, capsys, monkeypatch):
    """A wrong-length class list is one line wherever it is given; entry points that take the
    classes from a checkpoint say that the checkpoint fixes them."""
    from_checkpoint = script in ("eval.py", "predict.py", "tools/export.py", "tools/inspect_model.py")
    data = [] if from_checkpoint else [f"paths.data_dir={small_synthetic}"]
    code, stderr = run_entry(script, "data.num_classes=4", "data.class_names=[a,b]", *data,
                             f"hydra.run.dir={tmp_path / 'run'}", capsys=capsys, monkeypatch=monkeypatch)
    if from_checkpoint:
        assert_one_line_error(code, stderr, f"data.num_classes: {script} takes the model and its training settings "
                                            "from ckpt_path's checkpoint, so data.num_classes cannot change here")
    else:
        assert_one_line_error(code, stderr, "data.class_names=['a', 'b'] is not allowed; allowed: exactly "
                                            "data.num_classes=4 names")


@pytest.mark.parametrize("script", [s for s in ENTRY_POINTS
                                    if s not in ("eval.py", "predict.py", "tools/export.py", "tools/inspect_model.py")])
def test_every_entry_point_with_the_aug_group_checks_its_scale_range(script, tmp_path, small_synthetic, capsys,
                                                                     monkeypatch):
    """An empty scale range would draw no scale: refused wherever the train config is composed."""
    code, stderr = run_entry(script, "aug=deeplab", "aug.scale_min=2", "aug.scale_max=1.5",
                             f"paths.data_dir={small_synthetic}", f"hydra.run.dir={tmp_path / 'run'}",
                             capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "aug.scale_max=1.5 is not allowed; allowed: a number >= aug.scale_min=2")


def test_export_refuses_an_output_stride_in_one_line(standalone_ckpt, tmp_path, capsys, monkeypatch):
    code, stderr = run_entry("tools/export.py", f"ckpt_path={standalone_ckpt}", "output_stride=12",
                             f"output={tmp_path / 'model.onnx'}", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "output_stride=12 is not allowed; allowed: null, 8, 16, 32 (null: the "
                                        "checkpoint's eval or training output stride)")
    assert not (tmp_path / "model.onnx").exists()


def validated_steps(run_dir: Path) -> list[int]:
    path = run_dir / "validation.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines()] if path.is_file() else []


@pytest.mark.slow
def test_a_fresh_run_into_a_used_run_dir(tmp_path, small_synthetic, capsys, monkeypatch):
    """A second run without ckpt_path would mix with the first (last.ckpt beside last-v1.ckpt,
    one summary.json): it stops in one line and leaves every file of the first run as it was;
    ckpt_path=D continues it and overwrite=true replaces it."""
    run_dir = tmp_path / "run"
    code, stderr = train_small(run_dir, small_synthetic, "trainer.max_steps=2", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]
    before = snapshot(run_dir)
    code, stderr = train_small(run_dir, small_synthetic, "trainer.max_steps=2", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"hydra.run.dir={run_dir} holds another run's checkpoints; continue that run "
                                        f"with ckpt_path={run_dir}, start this one in another hydra.run.dir, or "
                                        "replace that one with overwrite=true")
    assert snapshot(run_dir) == before

    code, stderr = run_entry("train.py", f"ckpt_path={run_dir}", "trainer.max_steps=3", "trainer.max_epochs=2",
                             capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]
    assert saved_last(run_dir)["global_step"] == 3
    with (run_dir / "validation.jsonl").open("a") as history:  # an earlier validation, wherever it came from
        history.write(json.dumps({"epoch": 9.0, "step": 99, "val/mIoU": 0.5}) + "\n")

    code, stderr = train_small(run_dir, small_synthetic, "trainer.max_steps=1", "overwrite=true", capsys=capsys,
                               monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]
    assert saved_last(run_dir)["global_step"] == 1
    assert 99 not in validated_steps(run_dir)  # the earlier run's validations went too
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["last.ckpt"]  # no last-v1.ckpt beside it
    assert not (run_dir / ".hydra" / "resume-1").exists()  # the earlier run's records went with it


@pytest.mark.slow
def test_a_fresh_sweep_into_a_used_sweep_dir(tmp_path, small_synthetic, capsys, monkeypatch):
    sweep = tmp_path / "sweep"
    args = ("-m", f"hydra.sweep.dir={sweep}", f"paths.data_dir={small_synthetic}", *SMALL, *WORK, *TINY_NET,
            "trainer.max_steps=1", "seed=1,2")
    code, stderr = run_entry("train.py", *args, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]
    before = snapshot(sweep)
    code, stderr = run_entry("train.py", *args, capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"hydra.sweep.dir={sweep} holds the checkpoints of an earlier sweep (2 runs)")
    assert snapshot(sweep) == before
