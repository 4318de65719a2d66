"""Inputs a new user gives a step off the tested paths: nothing they gave is overwritten, a
finished run is not rewritten, two commands never share a run directory, 0/255 masks do not train
on nothing, and every mistake a library (Hydra, OmegaConf, YAML, Lightning) reports reaches the
user as one line, with the full trace still behind HYDRA_FULL_ERROR=1."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import ROOT, SMALL, TINY_NET, _user_env, assert_one_line_error, run_entry
from .data.layouts import save_index, save_rgb
from .test_bad_inputs import WORK, snapshot


def shapes(root: Path, count: int = 40, foreground: int = 255, size: int = 64, suffix: str = ".jpg") -> Path:
    """Bright discs on dark noise, masks 0 and `foreground` (0/255: the usual binary masks)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for i in range(count):
        image = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
        cy, cx, r = rng.integers(16, size - 16, 2).tolist() + [int(rng.integers(8, 16))]
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        image[inside] = rng.integers(150, 255, (int(inside.sum()), 3))
        mask = np.where(inside, foreground, 0).astype(np.uint8)
        save_rgb(root / "images" / f"im{i:02d}{suffix}", image)
        save_index(root / "masks" / f"im{i:02d}.png", mask)
    return root


BINARY = ("data=folder", "data.num_classes=2", "data.num_workers=0", "data.crop_size=64", "data.batch_size=4",
          "aug=crop_flip", "trainer.precision=32-true", "logger=none", *TINY_NET)


# -- 1. nothing the user gave is overwritten ---------------------------------------------------

def test_predict_refuses_to_write_over_its_input(trained_run, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "photos"
    save_rgb(folder / "photo.png", np.full((32, 32, 3), 90, np.uint8))
    save_rgb(folder / "other.jpg", np.full((32, 32, 3), 30, np.uint8))
    before = snapshot(folder)
    ckpt = trained_run / "checkpoints" / "best.ckpt"
    for output in (folder, folder / "masks"):
        code, stderr = run_entry("predict.py", f"ckpt_path={ckpt}", f"input={folder}", f"output={output}",
                                 capsys=capsys, monkeypatch=monkeypatch)
        assert_one_line_error(code, stderr, f"output={output} is inside input={folder}")
        assert snapshot(folder) == before and not (folder / "masks").exists()
    # one file as input, its own folder as output: photo.png would become its mask
    code, stderr = run_entry("predict.py", f"ckpt_path={ckpt}", f"input={folder / 'photo.png'}", f"output={folder}",
                             capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"output={folder} would overwrite the input image {folder / 'photo.png'}")
    assert snapshot(folder) == before


def test_predict_says_which_subfolders_it_skips_and_takes_a_run_dir(trained_run, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "photos"
    save_rgb(folder / "a.jpg", np.full((32, 32, 3), 90, np.uint8))
    save_rgb(folder / "day2" / "b.jpg", np.full((32, 32, 3), 90, np.uint8))
    code, stderr = run_entry("predict.py", f"ckpt_path={trained_run}", f"input={folder}",
                             f"output={tmp_path / 'out'}", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]
    assert f"input={folder}: 1 subfolder skipped (day2)" in stderr
    assert f"ckpt_path={trained_run}: reading {trained_run / 'checkpoints' / 'best.ckpt'}" in stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "a_overlay.jpg"]


def finished_run(tmp_path: Path, small_synthetic: Path, capsys, monkeypatch) -> Path:
    run_dir = tmp_path / "run"
    code, stderr = run_entry("train.py", f"hydra.run.dir={run_dir}", f"paths.data_dir={small_synthetic}", *SMALL,
                             *WORK, *TINY_NET, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]
    return run_dir


@pytest.mark.slow
def test_resuming_a_finished_run_changes_no_file(tmp_path, small_synthetic, capsys, monkeypatch):
    run_dir = finished_run(tmp_path, small_synthetic, capsys, monkeypatch)
    before = snapshot(run_dir)
    code, _, stdout = run_entry("train.py", f"ckpt_path={run_dir}", capsys=capsys, monkeypatch=monkeypatch,
                                stdout=True)
    assert code == 0
    assert f"{run_dir} finished at epoch 1; raise trainer.max_epochs to train on" in stdout
    assert snapshot(run_dir) == before
    for args, message in (
            (["os=8"], "holds another architecture (model.output_stride=16); this run builds model.output_stride=8"),
            (["model.aspp.rates=[12,24,36]", "trainer.max_epochs=2"], "holds another architecture (model.aspp="),
            (["trainer.max_epochs=2", "optim.lr=-1"], "optim.lr=-1 is not allowed"),  # refused inside the job
            (["trainer.max_epochs=2", "optim.lr=inf"], "optim.lr=inf is not allowed")):
        code, stderr = run_entry("train.py", f"ckpt_path={run_dir}", *args, capsys=capsys, monkeypatch=monkeypatch)
        assert_one_line_error(code, stderr, message)
        assert snapshot(run_dir) == before, args  # no .hydra/resume-N, no line in train.log
    assert not list((run_dir / ".hydra").glob("resume-*"))
    # with an epoch left, the same command trains it
    code, stderr = run_entry("train.py", f"ckpt_path={run_dir}", "trainer.max_epochs=2", capsys=capsys,
                             monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]
    assert (run_dir / ".hydra" / "resume-1").is_dir()


@pytest.mark.slow
def test_two_runs_started_into_one_run_dir(tmp_path, small_synthetic, trained_run, capsys, monkeypatch):
    """A real process trains; a second start into its run directory (from this process) is
    refused in one line; the first finishes untouched; a killed run leaves no lock held.
    `trained_run`: the data exists before both start."""
    run_dir = tmp_path / "run"
    args = [f"hydra.run.dir={run_dir}", f"paths.data_dir={small_synthetic}", *SMALL, *TINY_NET, "logger=none"]
    first = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args, "trainer.max_epochs=30"], cwd=ROOT,
                             env=_user_env(None), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "validation.jsonl").is_file():  # the first one is training
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()[-2000:]
            time.sleep(0.2)
        code, stderr = run_entry("train.py", *args, "trainer.max_epochs=1", capsys=capsys, monkeypatch=monkeypatch)
        assert first.poll() is None, "the first run ended before the second started: lengthen it"
        assert_one_line_error(code, stderr, f"hydra.run.dir={run_dir} is in use by another command running now")
        first.kill()  # a crashed run: the kernel drops its lock
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    code, stderr = run_entry("train.py", *args, *WORK, "overwrite=true", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "is in use" not in stderr, stderr[-2000:]  # the killed run's lock went with it
    assert not (run_dir / ".train.lock").exists()


# -- 2. masks that would train on nothing --------------------------------------------------------

@pytest.mark.slow
def test_zero_255_masks_are_stopped_then_learnt_with_a_label_map(tmp_path, capsys, monkeypatch):
    root = shapes(tmp_path / "discs")
    before = snapshot(root)
    code, stderr, stdout = run_entry("tools/check_data.py", "data=folder", f"data.root={root}", "data.num_classes=2",
                                     capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 1
    assert ("problem: split train: class 1 (foreground) never occurs while" in stdout
            and "map it with data.label_map={255: 1}" in stdout)
    run = [f"data.root={root}", *BINARY, f"hydra.run.dir={tmp_path / 'run'}"]
    code, stderr = run_entry("train.py", *run, capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "data.train_split=train: class 1 (foreground) never occurs")
    assert not (tmp_path / "run" / "checkpoints").exists()

    code, stderr, stdout = run_entry("tools/check_data.py", "data=folder", f"data.root={root}", "data.num_classes=2",
                                     "data.label_map={255:1}", capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 0 and "no problems found" in stdout, stdout[-2000:]
    code, stderr = run_entry("train.py", *run[:-1], f"hydra.run.dir={tmp_path / 'mapped'}", "data.label_map={255:1}",
                             "optim=adamw", "trainer.max_epochs=20", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]
    import json

    summary = json.loads((tmp_path / "mapped" / "summary.json").read_text())
    assert summary["per_class_iou"]["foreground"] > 0.5, summary["per_class_iou"]
    assert snapshot(root) == before  # read, never written


@pytest.mark.slow
def test_a_split_missing_some_classes_beside_others_still_trains(tmp_path, capsys, monkeypatch):
    """A small subset of a real dataset lacks some classes and has void borders (nine VOC images
    hold twelve of its 21 classes): that is no 0/255 mistake, and trains."""
    root = shapes(tmp_path / "discs", count=12, foreground=1)
    for mask_path in (root / "masks").iterdir():
        mask = np.array(Image.open(mask_path))
        mask[:2] = 255  # a void border
        save_index(mask_path, mask)
    code, stderr, stdout = run_entry("tools/check_data.py", "data=folder", f"data.root={root}", "data.num_classes=3",
                                     capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 0 and "no problems found" in stdout, stdout[-2000:]
    code, stderr = run_entry("train.py", f"data.root={root}", *BINARY, "data.num_classes=3",
                             f"hydra.run.dir={tmp_path / 'run'}", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]


def test_label_map_must_name_classes_or_void(tmp_path, capsys, monkeypatch):
    root = shapes(tmp_path / "discs", count=4)
    code, stderr = run_entry("train.py", f"data.root={root}", *BINARY, "data.label_map={255:7}",
                             f"hydra.run.dir={tmp_path / 'run'}", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "data.label_map={255: 7} is not allowed; allowed: mask values mapped to a "
                                        "class id 0..1, to ignore_index=255 or to null (void)")


def test_a_truncated_jpeg_in_training_is_named(tmp_path, capsys, monkeypatch):
    root = shapes(tmp_path / "discs", foreground=1)
    cut = root / "images" / "im03.jpg"
    cut.write_bytes(cut.read_bytes()[:-400])
    code, stderr = run_entry("train.py", f"data.root={root}", *BINARY, f"hydra.run.dir={tmp_path / 'run'}",
                             capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"{cut}: the JPEG file ends early (truncated")


@pytest.mark.slow
def test_upper_case_suffixes_and_ten_images_without_split_files(tmp_path, capsys, monkeypatch):
    root = shapes(tmp_path / "discs", count=10, foreground=1, suffix=".JPG")
    for mask in (root / "masks").iterdir():
        mask.rename(mask.with_suffix(".PNG"))
    code, stderr = run_entry("train.py", f"data.root={root}", *BINARY, f"hydra.run.dir={tmp_path / 'run'}",
                             capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]  # 1 val image of 10 (round(0.1 * 10)), 9 to train


def test_check_data_finds_repeats_overlaps_and_orphan_masks(tmp_path, capsys, monkeypatch):
    root = shapes(tmp_path / "discs", count=6, foreground=1)
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("im00\nim01\nim02\nim01\n")
    (root / "splits" / "val.txt").write_text("im02\nim03\n")
    save_index(root / "masks" / "lost.png", np.zeros((64, 64), np.uint8))
    code, stderr, stdout = run_entry("tools/check_data.py", "data=folder", f"data.root={root}", "data.num_classes=2",
                                     capsys=capsys, monkeypatch=monkeypatch, stdout=True)
    assert code == 1
    assert f"{root / 'splits' / 'train.txt'} lists 1 images more than once, first: im01" in stdout
    assert "1 images are in both train and val, first: im02" in stdout
    assert f"mask with no image of its name: {root / 'masks' / 'lost.png'}" in stdout


# -- 3. library errors at the boundary -----------------------------------------------------------

SYNTAX = [
    (["data.class_names=[a,b"], "data.class_names=[a,b is not a valid override"),
    (["data.class_names=[ä,b,c]"], "data.class_names=[ä,b,c] is not a valid override (token recognition error at: "
                                   "'ä'); Hydra reads unquoted values as ASCII only; quote them, e.g. "
                                   "data.class_names=['ä',b,c]"),
    (["optim.lr=1e-3)"], "optim.lr=1e-3) is not a valid override (extraneous input ')' expecting <EOF>)"),
    (["-m", "seed=range(0,)"], "seed=range(0,) is not a valid override"),
    (["optim.lr=${oops}"], "optim.lr: Interpolation key 'oops' not found"),
    (["trainer.val_check_interval=1.5"], "trainer.val_check_interval=1.5 is not allowed; allowed: null or an integer "
                                         ">= 1 or a number > 0 and <= 1 (batches, or a fraction of an epoch)"),
    (["trainer.val_check_interval=5", "trainer.limit_train_batches=3"],
     "Lightning refused the trainer settings: trainer.val_check_interval (5) must be less than or equal to the "
     "number of the training batches (3)."),
    (["hydra/launcher=submitit_slurm"], "hydra/launcher=submitit_slurm acts on a multirun only: add -m"),
    (["-m", "hydra/launcher=slurm", "trainer=gpu", "seed=1,2"], "hydra/launcher=slurm submits jobs with SLURM's "
                                                                "sbatch, which is not on this machine's PATH"),
    (["optim.lr=inf"], "optim.lr=inf is not allowed; allowed: a number > 0"),
]
if not __import__("torch").cuda.is_available():
    SYNTAX.append((["trainer=gpu"], "trainer.accelerator=gpu needs a CUDA GPU and this machine has none"))


@pytest.mark.parametrize("args, message", SYNTAX)
def test_library_errors_are_one_line(args, message, tmp_path, small_synthetic, trained_run, capsys, monkeypatch):
    """`trained_run`: the data exists before the snapshot, which shows that a refused command wrote nothing."""
    if "sbatch" in message and __import__("shutil").which("sbatch"):
        pytest.skip("this machine has SLURM")
    where = f"hydra.sweep.dir={tmp_path / 'sweep'}" if "-m" in args else f"hydra.run.dir={tmp_path / 'run'}"
    before = snapshot(small_synthetic)
    code, stderr = run_entry("train.py", f"paths.data_dir={small_synthetic}", *SMALL, *WORK, *TINY_NET, where, *args,
                             capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, message)
    assert snapshot(small_synthetic) == before


def test_a_broken_yaml_file_is_named_with_its_line(tmp_path, small_synthetic, capsys, monkeypatch):
    mine = tmp_path / "mine"
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "roads.yaml").write_text("root: /tmp\nnum_classes: [2\n  bad: yes\n")
    code, stderr = run_entry("train.py", "--config-dir", str(mine), "data=roads", f"hydra.run.dir={tmp_path / 'r'}",
                             capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"{mine / 'data' / 'roads.yaml'}, line 3, column 6: not valid YAML")
    (mine / "broken.yaml").write_text("defaults:\n  - train\n  - _self_\nseed: [1\n")
    code, stderr = run_entry("train.py", "--config-dir", str(mine), "--config-name", "broken",
                             f"hydra.run.dir={tmp_path / 'r'}", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"{mine / 'broken.yaml'}, line 5, column 1: not valid YAML")


@pytest.mark.parametrize("script", ["eval.py", "predict.py", "tools/export.py", "tools/inspect_model.py"])
def test_checkpoint_readers_refuse_architecture_changes(script, trained_run, tmp_path, capsys, monkeypatch):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    extra = [f"input={tmp_path}", f"output={tmp_path / 'o'}"] if script in ("predict.py", "tools/inspect_model.py") \
        else [f"output={tmp_path / 'm.onnx'}"] if script == "tools/export.py" else []
    name = script
    code, stderr = run_entry(script, f"ckpt_path={ckpt}", "backbone=resnet18", *extra, capsys=capsys,
                             monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"backbone: {name} takes the model from ckpt_path's checkpoint, "
                                        "so backbone cannot change here")
    if script in ("eval.py", "predict.py", "tools/export.py"):
        code, stderr = run_entry(script, f"ckpt_path={ckpt}", "model.output_stride=8", *extra, capsys=capsys,
                                 monkeypatch=monkeypatch)
        assert_one_line_error(code, stderr, f"model.output_stride: {name} takes the model from ckpt_path's checkpoint, "
                                            "so model.output_stride cannot change here; for inference at another "
                                            "output stride give os=8 or os=16")
        code, stderr = run_entry(script, f"ckpt_path={ckpt}", "data=voc", "trainer.max_epochs=2", *extra,
                                 capsys=capsys, monkeypatch=monkeypatch)
        assert_one_line_error(code, stderr, f"{name} takes the model and its training settings from ckpt_path's "
                                            "checkpoint, so data cannot change here")
        code, stderr = run_entry(script, f"ckpt_path={ckpt}", "+eval.foo=1", *extra, capsys=capsys,
                                 monkeypatch=monkeypatch)
        assert_one_line_error(code, stderr, f"eval.foo is not a key that {name} reads")
        code, stderr = run_entry(script, f"ckpt_path={ckpt}", "++model.output_stride=8", *extra, capsys=capsys,
                                 monkeypatch=monkeypatch)
        assert_one_line_error(code, stderr, f"model.output_stride: {name} takes the model from ckpt_path's checkpoint")


@pytest.mark.slow
def test_eval_takes_os_as_its_output_stride(trained_run, tmp_path):
    from .conftest import run_script

    result = run_script("eval.py", f"ckpt_path={trained_run}", "os=8", "data.num_workers=0", "++eval.flip=false",
                        f"hydra.run.dir={tmp_path / 'eval'}")
    assert result.returncode == 0, result.stderr[-2000:]
    import json

    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert (metrics["train_output_stride"], metrics["output_stride"]) == (16, 8)
    assert metrics["ckpt_path"] == str(trained_run / "checkpoints" / "best.ckpt")  # a run dir: its best.ckpt


def test_full_trace_still_shown_on_request():
    from .conftest import run_script

    result = run_script("train.py", "optim.lr=1e-3)", env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr
    result = run_script("train.py", "optim.lr=1e-3)")
    assert_one_line_error(result.returncode, result.stderr, "optim.lr=1e-3) is not a valid override")


@pytest.mark.parametrize("written", ["data.root=~/my data", "data.root='~/my data'", 'data.root="~/my data"'])
def test_home_is_expanded_in_path_keys(written, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    code, stderr = run_entry("train.py", "data=voc", written, f"hydra.run.dir={tmp_path / 'run'}",
                             *WORK, capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, f"data.root={tmp_path / 'my data'} does not exist")


def test_a_learning_rate_that_throws_the_weights_out_does_not_end_in_a_traceback(tmp_path, small_synthetic, capsys,
                                                                                  monkeypatch):
    """SGD at lr 0.9: batch norm statistics far out of range, where folding them for the fast
    validation may not reproduce the logits. The run ends normally or with the NaN stop's one line."""
    code, stderr = run_entry("train.py", f"hydra.run.dir={tmp_path / 'run'}", f"paths.data_dir={small_synthetic}",
                             *SMALL, *WORK, *TINY_NET, "optim=sgd", "optim.lr=0.9", capsys=capsys,
                             monkeypatch=monkeypatch)
    assert "Traceback" not in stderr, stderr[-3000:]
    assert code == 0 or (code == 2 and "error: the " in stderr), stderr[-2000:]  # the NaN stop's line


def test_a_nan_stop_without_a_checkpoint_suggests_no_resume(tmp_path, small_synthetic, capsys, monkeypatch):
    """Non-finite numbers before the first save: the line says no checkpoint exists instead of
    pointing at a resume that would fail."""
    run_dir = tmp_path / "run"
    code, stderr = run_entry("train.py", f"hydra.run.dir={run_dir}", f"paths.data_dir={small_synthetic}", *SMALL,
                             *WORK, *TINY_NET, "optim.lr=1e30", capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "no checkpoint was written before it; lower optim.lr or set "
                                        "trainer.gradient_clip_val and start again")
    assert "resume with" not in stderr and not (run_dir / "checkpoints" / "last.ckpt").exists()


def test_pinned_memory_only_for_a_gpu(tmp_path, small_synthetic, capsys, monkeypatch):
    """data.pin_memory=true on a CPU-only run: no pinned loader, so no PyTorch warning each run."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, stderr = run_entry("train.py", f"hydra.run.dir={tmp_path / 'run'}", f"paths.data_dir={small_synthetic}",
                                 *SMALL, *WORK, *TINY_NET, "data.pin_memory=true", "trainer.accelerator=cpu",
                                 capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]
    assert not [w for w in caught if "pin_memory" in str(w.message)], [str(w.message) for w in caught]


@pytest.mark.slow
def test_a_resume_names_its_run_once_per_key(tmp_path, small_synthetic, capsys, monkeypatch):
    import json

    run_dir = finished_run(tmp_path, small_synthetic, capsys, monkeypatch)
    code, stderr = run_entry("train.py", f"ckpt_path={run_dir}", "trainer.max_epochs=2",
                             f"paths.data_dir={small_synthetic}", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]
    name = json.loads((run_dir / "summary.json").read_text())["settings"]["name"].split(",")
    keys = [item.split("=", 1)[0] for item in name]
    assert "trainer.max_epochs=2" in name and len(keys) == len(set(keys)), name
