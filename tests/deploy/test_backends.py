"""Exported graphs read back by eval.py, predict.py and Segmenter: the same data, padding and
metrics as a checkpoint, the runtime named in metrics.json, the preprocessing from the export.
Each command runs in its own process: OpenVINO's and NNCF's threads and patches, loaded into the
test process, made a later training test crash it (a segmentation fault)."""

import json

import numpy as np
import pytest
from PIL import Image

from ..conftest import VOC_SAMPLES, assert_one_line_error, run_process


def refused(script: str, *args: str) -> tuple[int, str]:
    result = run_process(script, *args)
    return result.returncode, result.stderr


def exported(trained_run, tmp_path, *args: str) -> dict:
    result = run_process("tools/export.py", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}",
                        "example_size=[65,65]", "check_size=[33,49]", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def evaluated(ckpt, folder, *args: str) -> dict:
    result = run_process("eval.py", f"ckpt_path={ckpt}", f"hydra.run.dir={folder}", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((folder / "metrics.json").read_text())


@pytest.mark.slow
def test_eval_py_reads_each_export_as_it_reads_the_checkpoint(trained_run, tmp_path):
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    exported(trained_run, tmp_path, f"output={tmp_path / 'model.onnx'}")
    int8 = exported(trained_run, tmp_path, "format=onnx-int8", f"output={tmp_path / 'int8'}", "calibration_images=8")
    reference = evaluated(checkpoint, tmp_path / "pt")
    fp32 = evaluated(tmp_path / "model.onnx", tmp_path / "onnx")
    quantized = evaluated(tmp_path / "int8", tmp_path / "q")
    assert (reference["backend"], fp32["backend"], quantized["backend"]) == ("pytorch", "onnx", "onnx-int8")
    assert fp32["mIoU"] == pytest.approx(reference["mIoU"], abs=1e-4)
    assert fp32["per_class_iou"] == pytest.approx(reference["per_class_iou"], abs=1e-4)
    assert quantized["mIoU"] == pytest.approx(int8["mIoU_converted"], abs=1e-9)  # the export's own check, whole split
    assert quantized["images"] == reference["images"] == int8["images"]
    flipped = evaluated(tmp_path / "model.onnx", tmp_path / "flip", "eval.scales=[0.75,1.0]", "eval.flip=true")
    flipped_reference = evaluated(checkpoint, tmp_path / "flip_pt", "eval.scales=[0.75,1.0]", "eval.flip=true")
    assert flipped["mIoU"] == pytest.approx(flipped_reference["mIoU"], abs=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(not VOC_SAMPLES.is_dir(), reason="../shared/data/voc2012_samples is absent")
def test_predict_py_on_each_fp32_export_writes_the_checkpoints_masks(trained_run, tmp_path):
    """The nine VOC photos: the masks of an ONNX file, an OpenVINO folder and a TorchScript folder are
    the checkpoint's, byte for byte."""
    exported(trained_run, tmp_path, f"output={tmp_path / 'model.onnx'}")
    exported(trained_run, tmp_path, "format=openvino", f"output={tmp_path / 'openvino'}", "check_images=2")
    exported(trained_run, tmp_path, "format=torchscript", f"output={tmp_path / 'torchscript'}", "check_images=2")
    images = sorted((VOC_SAMPLES / "JPEGImages").glob("*.jpg"))
    sources = {"pt": trained_run, "onnx": tmp_path / "model.onnx", "openvino": tmp_path / "openvino",
               "torchscript": tmp_path / "torchscript"}
    for name, ckpt in sources.items():
        result = run_process("predict.py", f"ckpt_path={ckpt}", f"input={VOC_SAMPLES / 'JPEGImages'}",
                            f"output={tmp_path / 'masks' / name}", "num_workers=0")
        assert result.returncode == 0, result.stderr[-2000:]
    assert len(images) == 9
    for path in images:
        masks = {name: np.array(Image.open(tmp_path / "masks" / name / f"{path.stem}.png")) for name in sources}
        for name in ("onnx", "openvino", "torchscript"):
            assert masks[name].tobytes() == masks["pt"].tobytes(), (name, path.name)


@pytest.mark.slow
def test_an_export_keeps_its_output_stride_and_an_old_onnx_file_is_named(trained_run, tmp_path, capsys,
                                                                         monkeypatch):
    exported(trained_run, tmp_path, f"output={tmp_path / 'model.onnx'}")
    code, stderr = refused("eval.py", f"ckpt_path={tmp_path / 'model.onnx'}", "os=8",
                             f"hydra.run.dir={tmp_path / 'e'}")
    assert_one_line_error(code, stderr, "os=8: this onnx graph was exported at output stride 16, which it keeps; "
                                        "export again with os=8")
    import onnx

    proto = onnx.load(str(tmp_path / "model.onnx"))
    kept = [p for p in proto.metadata_props if p.key != "deeplab_config"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, str(tmp_path / "old.onnx"))
    code, stderr = refused("eval.py", f"ckpt_path={tmp_path / 'old.onnx'}", f"hydra.run.dir={tmp_path / 'o'}")
    assert_one_line_error(code, stderr, "is an ONNX file without the run config in its metadata")


FOLDER_FORMATS = {"onnx-int8": "model.onnx", "openvino": "model.xml", "openvino-int8": "model.xml",
                  "torchscript": "model.pt"}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FOLDER_FORMATS)
def test_every_folder_format_exports_checks_evaluates_and_predicts(fmt, trained_run, tmp_path):
    """Each format: its folder, its check against PyTorch (FP: logits within tolerance; INT8: masks
    and mIoU on the val split), eval.py's metrics.json naming it, predict.py's masks."""
    folder = tmp_path / fmt
    report = exported(trained_run, tmp_path, f"format={fmt}", f"output={folder}", "calibration_images=8")
    assert {FOLDER_FORMATS[fmt], "config.json", "preprocessing.json", "export.json"} <= {p.name for p in
                                                                                         folder.iterdir()}
    assert not list(folder.glob("*fp32*")) and report["format"] == fmt and report["images"] == 12
    assert json.loads((folder / "config.json").read_text())["format"] == f"deeplab-{fmt}/1"
    reference = evaluated(trained_run / "checkpoints" / "last.ckpt", tmp_path / "pt")
    metrics = evaluated(folder, tmp_path / "eval")
    assert metrics["backend"] == fmt and metrics["ckpt_path"] == str(folder)
    assert report["mIoU_reference"] == pytest.approx(reference["mIoU"], abs=1e-6)
    assert metrics["mIoU"] == pytest.approx(report["mIoU_converted"], abs=1e-9)
    if fmt.endswith("int8"):
        assert report["calibration_images"] == 8 and 0.9 <= report["agreement"] <= 1
    else:
        assert report["max_abs_diff"] <= 1e-4 and report["agreement"] > 0.999
        assert metrics["mIoU"] == pytest.approx(reference["mIoU"], abs=1e-4)
    if fmt == "openvino-int8":
        assert report["convolutions"]  # the names keep_fp32 takes
    images = tmp_path / "images"
    images.mkdir()
    for index, (height, width) in enumerate([(97, 130), (64, 64)]):
        pixels = np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"photo{index}.png")
    masks = {}
    for name, ckpt in (("pt", trained_run), (fmt, folder)):
        result = run_process("predict.py", f"ckpt_path={ckpt}", f"input={images}", f"output={tmp_path / name}",
                            "num_workers=0")
        assert result.returncode == 0, result.stderr[-2000:]
        masks[name] = [np.array(Image.open(tmp_path / name / f"photo{i}.png")) for i in range(2)]
    assert [m.shape for m in masks[fmt]] == [(97, 130), (64, 64)]
    if not fmt.endswith("int8"):
        assert all(a.tobytes() == b.tobytes() for a, b in zip(masks["pt"], masks[fmt], strict=True))


@pytest.mark.slow
def test_a_graph_runs_on_the_cpu_as_exported_and_a_failed_export_leaves_nothing(trained_run, tmp_path, capsys,
                                                                                monkeypatch):
    exported(trained_run, tmp_path, f"output={tmp_path / 'model.onnx'}")
    onnx_file = f"ckpt_path={tmp_path / 'model.onnx'}"
    for args, message in (
            (["device=cuda"], "device=cuda: the onnx graph runs on the CPU (its runtime's); give device=cpu"),
            (["eval.precision=bf16"], "eval.precision=bf16: the onnx graph computes as it was exported; "
                                      "allowed: fp32")):
        code, stderr = refused("eval.py", onnx_file, f"hydra.run.dir={tmp_path / 'e'}", *args)
        assert_one_line_error(code, stderr, message)
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "in" / "photo.png")
    code, stderr = refused("predict.py", onnx_file, f"input={tmp_path / 'in'}", f"output={tmp_path / 'p'}",
                             "device=cuda")
    assert_one_line_error(code, stderr, "device=cuda: the onnx graph runs on the CPU")
    assert not (tmp_path / "p").exists()

    out = tmp_path / "exports"
    code, stderr = refused("tools/export.py", f"ckpt_path={trained_run}", "format=openvino",
                             f"output={out / 'ov'}", "example_size=[65,65]", "check_size=[33,49]", "tolerance=1e-30",
                             "check_images=2")
    assert_one_line_error(code, stderr, "format=openvino: the graph and PyTorch differ by up to")
    assert list(out.iterdir()) == []  # neither the folder nor its staging copy
