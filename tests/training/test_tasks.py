"""task=binary and task=multilabel through every entry point: train.py (W&B offline), eval.py,
predict.py, Segmenter, tools/export.py, tools/check_data.py, model.init_from and a resume; each
mistake a one-line error. The multiclass task's own tests are the rest of the suite, untouched."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

import deeplab
from deeplab.builders.checkpoint import load_checkpoint
from deeplab.errors import UserError

from ..conftest import SMALL, TINY_NET, assert_one_line_error, run_entry, run_process, run_script, run_train

WANDB = [a for a in SMALL if not a.startswith("logger=") and not a.startswith("data.prepare")] + \
    ["logger=wandb", "trainer.max_epochs=1", *TINY_NET]
BINARY = ["task=binary", "data=synthetic_binary", "data.prepare.num_train=24", "data.prepare.num_val=6"]
MULTILABEL = ["task=multilabel", "data=synthetic_multilabel", "data.prepare.num_train=24", "data.prepare.num_val=6"]


def wandb_summary(run_dir: Path) -> dict:
    wandb_cli = Path(sys.executable).parent / "wandb"
    inspect = subprocess.run([str(wandb_cli), "leet", "inspect", "--summary", "--json", str(run_dir / "wandb")],
                             capture_output=True, text=True, timeout=120)
    assert inspect.returncode == 0, inspect.stderr
    return json.loads(inspect.stdout)["summary"]


@pytest.fixture(scope="session")
def task_data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("task_data")


def one_epoch(tmp_path_factory, task_data: Path, task_args: list[str]) -> Path:
    """One epoch of the tiny network on a small generated set of the task, W&B offline."""
    run_dir = tmp_path_factory.mktemp(task_args[0].removeprefix("task=")) / "run"
    result = run_train(run_dir, *task_args, *WANDB, data_dir=task_data)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="session")
def binary_run(tmp_path_factory, task_data) -> Path:
    return one_epoch(tmp_path_factory, task_data, BINARY)


@pytest.fixture(scope="session")
def multilabel_run(tmp_path_factory, task_data) -> Path:
    return one_epoch(tmp_path_factory, task_data, MULTILABEL)


def val_images(task_data: Path, name: str, count: int = 3) -> list[Path]:
    return sorted((task_data / name / "images").glob("val_*.jpg"))[:count]


@pytest.mark.slow
def test_binary_run_has_one_channel_and_logs_the_foreground_scores(binary_run):
    state = load_checkpoint(binary_run / "checkpoints" / "last.ckpt")["state_dict"]
    heads = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 4]
    assert heads[-1].shape[0] == 1  # one sigmoid channel
    summary = json.loads((binary_run / "summary.json").read_text())
    for key in ("val/fg_IoU", "val/Dice", "val/precision", "val/recall", "val/mIoU"):
        assert 0 <= summary[key] <= 1, key
    assert set(summary["per_class_iou"]) <= {"background", "structure"}
    assert summary["deviations"] == []  # a generated quick-start set, not the paper's data
    logged = wandb_summary(binary_run)
    assert logged["val/fg_IoU"] == pytest.approx(summary["val/fg_IoU"])
    assert "val/prediction_0" in logged and "val/confusion_matrix_table" in logged
    assert "task=binary" in (binary_run / "train.log").read_text()  # the start-up line names the task


@pytest.mark.slow
def test_eval_py_reports_the_foreground_and_the_best_threshold(binary_run, tmp_path):
    summary = json.loads((binary_run / "summary.json").read_text())
    result = run_train(tmp_path / "eval", f"ckpt_path={binary_run / 'checkpoints' / 'last.ckpt'}",
                       "eval.threshold_sweep=true", "eval.bootstrap=20", "eval.num_worst=1", script="eval.py")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["task"] == "binary" and metrics["threshold"] == 0.5 and metrics["activation"] == "sigmoid"
    for key in ("fg_IoU", "Dice", "precision", "recall"):  # the validation's figures, through eval.py's path
        assert metrics[key] == pytest.approx(summary[f"val/{key}"], abs=1e-6), key
    sweep = metrics["threshold_sweep"]
    assert 0 < sweep["threshold"] < 1 and sweep["F1"] >= metrics["Dice"] - 0.02  # best of 99 thresholds
    assert (tmp_path / "eval" / "worst.png").is_file() and "mIoU_ci95" in metrics

    other = run_train(tmp_path / "eval2", f"ckpt_path={binary_run}", "eval.threshold=0.9", "eval.bootstrap=0",
                      "eval.num_worst=0", script="eval.py")
    assert other.returncode == 0, other.stderr[-3000:]
    high = json.loads((tmp_path / "eval2" / "metrics.json").read_text())
    assert high["threshold"] == 0.9 and high["recall"] <= metrics["recall"] + 1e-9  # fewer pixels are foreground

    # the sigmoid probabilities through scales, flips, windows and trimap bands
    paper = run_train(tmp_path / "eval3", f"ckpt_path={binary_run}", "eval.scales=[0.75,1.0]", "eval.flip=true",
                      "eval.mode=slide", "eval.window=[64,64]", "eval.trimap.widths=[2,4]", "eval.bootstrap=0",
                      "eval.num_worst=0", script="eval.py")
    assert paper.returncode == 0, paper.stderr[-3000:]
    averaged = json.loads((tmp_path / "eval3" / "metrics.json").read_text())
    assert set(averaged["trimap"]) == {"2", "4"} and 0 <= averaged["fg_IoU"] <= 1 and averaged["flip"] is True

    assert deeplab.evaluate(binary_run, ["eval.bootstrap=0", "eval.num_worst=0",
                                         f"hydra.run.dir={tmp_path / 'api'}"])["fg_IoU"] == pytest.approx(
        metrics["fg_IoU"], abs=1e-6)


def test_predict_py_writes_0_255_masks_and_probability_maps_as_segmenter_gives(binary_run, task_data, tmp_path):
    images = val_images(task_data, "synthetic_binary")
    source = tmp_path / "in"
    source.mkdir()
    for path in images:
        (source / path.name).write_bytes(path.read_bytes())
    result = run_script("predict.py", f"ckpt_path={binary_run}", f"input={source}", f"output={tmp_path / 'out'}",
                        "predict.probabilities=true")
    assert result.returncode == 0, result.stderr[-3000:]
    segmenter = deeplab.Segmenter.from_checkpoint(binary_run, device="cpu")
    for path in images:
        written = Image.open(tmp_path / "out" / f"{path.stem}.png")
        assert written.mode == "L" and set(np.unique(np.array(written))) <= {0, 255}
        mask, probs = segmenter.predict(str(path)), segmenter.predict(str(path), return_probs=True)
        assert probs.shape == (1, *mask.shape) and set(np.unique(mask)) <= {0, 1}
        assert (np.array(written) == mask * 255).all()
        assert (mask == (probs[0] > 0.5)).all()
        stored = np.array(Image.open(tmp_path / "out" / f"{path.stem}_prob.png"))
        assert (stored == np.round(probs[0] * 255)).all()
        assert (tmp_path / "out" / f"{path.stem}_overlay.jpg").is_file()
    low = deeplab.Segmenter.from_checkpoint(binary_run, device="cpu", threshold=0.05)
    assert low.predict(str(images[0])).sum() >= segmenter.predict(str(images[0])).sum()


@pytest.mark.slow
@pytest.mark.parametrize("run", ["binary_run", "multilabel_run"])
def test_exported_onnx_gives_the_probabilities(run, request, tmp_path):
    run_dir = request.getfixturevalue(run)
    path = tmp_path / "model.onnx"
    result = run_script("tools/export.py", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", f"output={path}",
                        "example_size=[65,81]", "check_size=[49,57]")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["output"] == "probabilities" and report["max_abs_diff"] <= 1e-4
    segmenter = deeplab.Segmenter.from_checkpoint(run_dir, device="cpu")
    image = torch.randn(1, 3, 49, 57)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (probs,) = session.run(["probabilities"], {"image": image.numpy()})
    with torch.no_grad():
        expected = segmenter.network.eval()(image).sigmoid().numpy()
    assert np.abs(probs - expected).max() <= 1e-4 and probs.min() >= 0 and probs.max() <= 1


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx-int8", "openvino", "openvino-int8", "torchscript"])
@pytest.mark.parametrize("run", ["binary_run", "multilabel_run"])
def test_every_export_folder_takes_either_task(run, fmt, request, tmp_path):
    """A sigmoid task through each deployment format: the check's masks agree with PyTorch's, and
    eval.py on the folder gives the check's figure (FP formats: the checkpoint's own)."""
    run_dir = request.getfixturevalue(run)
    folder = tmp_path / fmt
    result = run_process("tools/export.py", f"ckpt_path={run_dir}", f"format={fmt}", f"output={folder}",
                        "example_size=[65,81]", "check_size=[49,57]", "calibration_images=4", "check_images=6")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["agreement"] >= (0.9 if fmt.endswith("int8") else 0.999), report
    reference = run_train(tmp_path / "pt", f"ckpt_path={run_dir}", script="eval.py", process=True)
    exported = run_train(tmp_path / "ex", f"ckpt_path={folder}", script="eval.py", process=True)
    assert reference.returncode == 0 and exported.returncode == 0, exported.stderr[-3000:]
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("pt", "ex")]
    assert metrics[1]["backend"] == fmt and metrics[1]["task"] == metrics[0]["task"]
    if not fmt.endswith("int8"):
        assert metrics[1]["mIoU"] == pytest.approx(metrics[0]["mIoU"], abs=1e-4)


def test_multilabel_trains_evaluates_and_predicts_each_label(multilabel_run, task_data, tmp_path):
    summary = json.loads((multilabel_run / "summary.json").read_text())
    assert set(summary["per_label_f1"]) == {"vegetation", "flooded"} and 0 <= summary["val/mF1"] <= 1
    logged = wandb_summary(multilabel_run)
    assert "val/prediction_0" in logged and "val/f1/flooded" in logged

    result = run_train(tmp_path / "eval", f"ckpt_path={multilabel_run}", "eval.bootstrap=20",
                       "eval.threshold_sweep=true", script="eval.py")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(metrics["threshold_sweep"]) == {"vegetation", "flooded"}  # each label's best F1 threshold
    assert metrics["task"] == "multilabel" and set(metrics["per_label"]) == {"vegetation", "flooded"}
    assert metrics["mIoU"] == pytest.approx(summary["val/mIoU"], abs=1e-6)
    for label, scores in metrics["per_label"].items():
        assert scores["iou"] == pytest.approx(summary["per_class_iou"][label], abs=1e-6)
    assert (tmp_path / "eval" / "per_label.csv").is_file() and len(metrics["mIoU_ci95"]) == 2
    compared = run_script("tools/compare.py", str(tmp_path / "eval"), str(tmp_path / "eval"))  # reads its files
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "flooded" in compared.stdout

    images = val_images(task_data, "synthetic_multilabel", 2)
    result = run_script("predict.py", f"ckpt_path={multilabel_run}", f"input={images[0].parent}",
                        f"output={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr[-3000:]
    segmenter = deeplab.Segmenter.from_checkpoint(multilabel_run, device="cpu")
    masks = segmenter.predict(str(images[0]))
    assert masks.shape[0] == 2 and set(np.unique(masks)) <= {0, 1}
    for index, label in enumerate(("vegetation", "flooded")):  # one 0/255 mask a label, in a folder a label
        written = np.array(Image.open(tmp_path / "out" / label / f"{images[0].stem}.png"))
        assert (written == masks[index] * 255).all()
    count = len(list(images[0].parent.glob("*.jpg")))
    assert len(list((tmp_path / "out" / "flooded").glob("*.png"))) == count  # every image of the folder


def test_check_data_reports_the_foreground_share(task_data, binary_run, multilabel_run):
    for args, names in ((BINARY, ["structure"]), (MULTILABEL, ["vegetation", "flooded"])):
        result = run_script("tools/check_data.py", *args, f"paths.data_dir={task_data}")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
        shares = report["splits"]["train"]["foreground_share"]
        assert set(shares) == set(names) and all(0 < v < 100 for v in shares.values())


def write_folder(root: Path, count: int = 10, labels: list[str] | None = None) -> Path:
    """`count` images with 0/255 masks (a square of foreground), no split files; one mask folder a
    label with `labels`."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    for index in range(count):
        image = rng.integers(0, 255, (48, 56, 3), dtype=np.uint8)
        mask = np.zeros((48, 56), np.uint8)
        mask[10:30, 12:40] = 255
        image[mask > 0] //= 3
        Image.fromarray(image).save(root / "images" / f"img{index}.JPG")
        for folder in [root / "masks" / label for label in labels] if labels else [root / "masks"]:
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(folder / f"img{index}.png")
    return root


def test_a_folder_of_0_255_masks_trains_as_binary(tmp_path):
    root = write_folder(tmp_path / "data")
    args = ["data=folder", f"data.root={root}", "task=binary", "data.crop_size=48", "data.batch_size=2",
            "data.num_workers=0", "logger=none", "trainer.max_epochs=1", "trainer.check_val_every_n_epoch=1", *TINY_NET]
    refused = run_train(tmp_path / "refused", *args)  # 255 is the void unless the label map says otherwise
    assert refused.returncode == 2 and "data.label_map={255: 1}" in refused.stderr
    result = run_train(tmp_path / "run", *args, "data.label_map={255:1}", "loss=bce_dice",
                       "loss.pos_weight=balanced")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loss.pos_weight (balanced" in (tmp_path / "run" / "train.log").read_text()
    assert "val/fg_IoU" in json.loads((tmp_path / "run" / "summary.json").read_text())


def test_init_from_a_multiclass_model_keeps_all_but_the_classifier(trained_run, tmp_path, task_data):
    result = run_train(tmp_path / "run", *BINARY, *SMALL[2:], *TINY_NET, "trainer.max_epochs=1",
                       "trainer.limit_train_batches=1", f"model.init_from={trained_run}", data_dir=task_data)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in (tmp_path / "run" / "train.log").read_text().splitlines() if "init_from:" in x)
    assert "2 re-initialised" in line and "[1, " in line, line  # the classifier's weight and bias, one channel


def test_resuming_as_another_task_is_refused(binary_run, task_data, tmp_path):
    result = run_train(tmp_path / "run", "data=synthetic_binary", "task=multiclass", *SMALL[2:], *TINY_NET,
                       f"ckpt_path={binary_run / 'checkpoints' / 'last.ckpt'}", data_dir=task_data)
    assert_one_line_error(result.returncode, result.stderr, "holds another architecture (task.name=binary)")


@pytest.mark.parametrize("args, message", [
    (["task=binary"], "data.num_classes=5 is not allowed; allowed: 2 with task=binary"),
    (["task=binary", "data=synthetic_binary", "data.num_classes=1", "data.class_names=[structure]"],
     "data.num_classes=1 is not allowed; allowed: an integer >= 2 (task=binary counts background and the "
     "foreground: 2)"),
    (["task=binary", "data=synthetic_binary", "task.threshold=1"], "task.threshold=1 is not allowed"),
    (["task=binary", "data=synthetic_binary", "task.threshold=0"], "task.threshold=0 is not allowed"),
    (["task=binary", "data=synthetic_binary", "loss=ce"], "loss=ce is not allowed with task=binary; allowed: bce, "
                                                          "bce_dice, dice, focal"),
    (["loss=bce"], "loss=bce is not allowed with task=multiclass; allowed: ce, dice, focal"),
    (["task=binary", "data=synthetic_binary", "loss=focal", "loss.class_weights=[1,2]"],
     "loss.class_weights=[1, 2] is not allowed; allowed: null with task=binary"),
    (["task=multilabel", "data=synthetic_multilabel", "loss.pos_weight=balanced"],
     "loss.pos_weight=balanced is not allowed; allowed: a number or null with task=multilabel"),
    (["data=synthetic_multilabel"], "data.mask_format=labels is not allowed; allowed: index or color"),
    (["task=multilabel", "data=synthetic_binary"],
     "data.mask_format=null is not allowed; allowed: labels or bands with task=multilabel"),
    (["task=multilabel", "data=synthetic_multilabel", "eval.trimap.widths=[4]"], "eval.trimap.widths=[4] is not "
                                                                                 "allowed"),
    (["eval.threshold=0.3"], "eval.threshold=0.3 is not allowed; allowed: null with task=multiclass"),
    (["eval.threshold_sweep=true"], "eval.threshold_sweep=true is not allowed; allowed: false with task=multiclass"),
    (["task=binary", "data=synthetic_binary", "loss=dice", "loss.mode=multiclass"],
     "loss.mode=multiclass is not allowed with task=binary"),
])
def test_a_task_mistake_is_one_line(args, message, capsys, monkeypatch):
    code, err = run_entry("train.py", *args, capsys=capsys, monkeypatch=monkeypatch)
    assert_one_line_error(code, err, message)


def test_a_missing_label_folder_or_unmapped_0_255_label_masks_are_one_line(tmp_path):
    args = ["data=folder", "task=multilabel", "data.mask_format=labels", "data.crop_size=48", "data.batch_size=2",
            "data.class_names=[water,roads]"]
    root = write_folder(tmp_path / "one", labels=["water"])
    result = run_train(tmp_path / "run", *args, f"data.root={root}")
    assert_one_line_error(result.returncode, result.stderr, f"{root / 'masks' / 'roads'}/ is missing")
    root = write_folder(tmp_path / "both", labels=["water", "roads"])  # stored 0/255: 255 reads as void
    result = run_train(tmp_path / "run2", *args, f"data.root={root}")
    assert_one_line_error(result.returncode, result.stderr, "class 1 (label present) never occurs while")
    assert "data.label_map={255: 1}" in result.stderr


def test_reader_mistakes_are_one_line(binary_run, trained_run, tmp_path):
    result = run_train(tmp_path / "eval", f"ckpt_path={binary_run}", "eval.threshold=1.5", script="eval.py")
    assert_one_line_error(result.returncode, result.stderr, "eval.threshold=1.5 is not allowed")
    for arg, message in (("eval.threshold=0.3", "eval.threshold=0.3 is not allowed with a multiclass model"),
                         ("eval.threshold_sweep=true", "eval.threshold_sweep=true is not allowed with a multiclass")):
        result = run_train(tmp_path / "eval", f"ckpt_path={trained_run}", arg, script="eval.py")
        assert_one_line_error(result.returncode, result.stderr, message)
    with pytest.raises(UserError, match="eval.threshold=0.3 is not allowed with a multiclass model"):
        deeplab.Segmenter.from_checkpoint(trained_run, device="cpu", threshold=0.3)
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "in" / "a.png")
    result = run_script("predict.py", f"ckpt_path={trained_run}", f"input={tmp_path / 'in'}",
                        f"output={tmp_path / 'out'}", "predict.probabilities=true")
    assert_one_line_error(result.returncode, result.stderr, "predict.probabilities=true is not allowed with the "
                                                             "multiclass model")


DATA_OF_TASK = {"multiclass": "synthetic", "binary": "synthetic_binary", "multilabel": "synthetic_multilabel"}
FITS = {"ce": {"multiclass"}, "bce": {"binary", "multilabel"}, "bce_dice": {"binary", "multilabel"},
        "dice": {"multiclass", "binary", "multilabel"}, "focal": {"multiclass", "binary", "multilabel"}}


@pytest.mark.parametrize("task", sorted(DATA_OF_TASK))
def test_every_loss_against_every_task(task):
    """Each loss option composed with each task: validated where it fits, one line naming the fitting
    ones where it does not, and where it fits, built and run on the task's output and masks."""
    from hydra.utils import instantiate

    from deeplab.errors import ConfigError
    from deeplab.schema import validate

    from ..conftest import CONF_DIR, compose_config, group_options

    assert set(group_options(CONF_DIR, "loss")) == set(FITS)
    channels = 1 if task == "binary" else 2 if task == "multilabel" else 5
    for loss in sorted(FITS):
        cfg = compose_config(f"task={task}", f"data={DATA_OF_TASK[task]}", f"loss={loss}")
        if task not in FITS[loss]:
            with pytest.raises(ConfigError, match=f"loss={loss} is not allowed with task={task}; allowed: "):
                validate(cfg)
            continue
        validate(cfg)
        logits = torch.randn(2, channels, 8, 8, requires_grad=True)
        shape = (2, 2, 8, 8) if task == "multilabel" else (2, 8, 8)
        target = torch.randint(0, 2 if task != "multiclass" else 5, shape)
        target[..., 0, :] = 255
        value = instantiate(cfg.loss)(logits, target)
        value.backward()
        assert torch.isfinite(value) and logits.grad.abs().sum() > 0, (task, loss)


def test_show_aug_draws_every_label(task_data, multilabel_run, tmp_path):
    result = run_script("tools/show_aug.py", *MULTILABEL, f"paths.data_dir={task_data}", "num=2",
                        f"output={tmp_path / 'grid.png'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "grid.png").size == (2 * (2 * 96 + 4) + 4, 96)  # two tiles of 96 crops


def test_a_multilabel_overlay_blends_each_label_a_pixel_has():
    from deeplab.data.preview import VOID_COLOUR, overlay

    image = np.full((1, 4, 3), 100, np.uint8)
    labels = np.array([[[0, 1, 1, 255]], [[0, 0, 1, 0]]])  # (labels, H, W): none, first, both, void
    colours = np.array([[200, 0, 0], [0, 0, 200]])
    out = overlay(image, labels, colours, 255, alpha=0.5)
    assert out[0, 0].tolist() == [100, 100, 100]
    assert out[0, 1].tolist() == [150, 50, 50]
    assert out[0, 2].tolist() == [75, 25, 125]  # the first label's blend, then the second's over it
    assert out[0, 3].tolist() == list(VOID_COLOUR)


@pytest.mark.slow
@pytest.mark.parametrize("run, args", [("binary_run", BINARY), ("multilabel_run", MULTILABEL)])
def test_the_other_tools_take_either_task(run, args, request, task_data, tmp_path):
    run_dir = request.getfixturevalue(run)
    complexity = run_script("tools/complexity.py", *args, *TINY_NET, "input_size=[65,65]")
    assert complexity.returncode == 0, complexity.stderr[-2000:]
    memory = run_script("tools/memory.py", *args, *TINY_NET, "trainer.precision=32-true", "data.crop_size=64")
    assert memory.returncode == 0, memory.stderr[-2000:]
    image = val_images(task_data, args[1].removeprefix("data="), 1)[0]
    inspect = run_script("tools/inspect_model.py", f"ckpt_path={run_dir}", f"input={image}", "num_images=1",
                         "size=129", f"output={tmp_path}")
    assert inspect.returncode == 0, inspect.stderr[-2000:]
    assert (tmp_path / "receptive_field.json").is_file()
    learn = run_train(tmp_path / "learn", *args, script="tools/learn.py")  # smp's comparison: softmax cross-entropy
    assert_one_line_error(learn.returncode, learn.stderr, f"{args[0]} is not allowed in tools/learn.py")
    assert not (tmp_path / "learn").exists()  # refused before its run directory is made


def test_multi_band_masks_train_and_check_as_one_png_a_label_does(tmp_path):
    """data.mask_format=bands: masks/<name>.npy and .tif of (H, W, labels), or planar (labels, H, W)."""
    import tifffile

    root = write_folder(tmp_path / "data", labels=["water", "roads"])
    for index, png in enumerate(sorted((root / "masks" / "water").glob("*.png"))):
        water = np.array(Image.open(png)) // 255
        stacked = np.stack([water, 1 - water], axis=-1).astype(np.uint8)
        if index % 2:
            tifffile.imwrite(root / "masks" / f"{png.stem}.tif", np.moveaxis(stacked, -1, 0))  # planar
        else:
            np.save(root / "masks" / f"{png.stem}.npy", stacked)
    args = ["data=folder", f"data.root={root}", "task=multilabel", "data.mask_format=bands", "data.crop_size=48",
            "data.batch_size=2", "data.class_names=[water,dry]", "data.num_workers=0"]
    result = run_train(tmp_path / "run", *args, "logger=none", "trainer.max_epochs=1",
                       "trainer.check_val_every_n_epoch=1", *TINY_NET)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary["per_label_f1"]) <= {"water", "dry"} and summary["val/mIoU"] is not None
    checked = run_script("tools/check_data.py", *args)
    assert checked.returncode == 0, checked.stdout[-2000:]
    shares = json.loads(checked.stdout.strip().splitlines()[-1])["splits"]["train"]["foreground_share"]
    assert shares["water"] + shares["dry"] == pytest.approx(100)  # every pixel is water or dry

    np.save(root / "masks" / "img0.npy", np.zeros((48, 56, 3), np.uint8))  # three bands for two labels
    checked = run_script("tools/check_data.py", *args)
    assert checked.returncode == 1 and "data.mask_format=bands reads height x width x 2" in checked.stdout
