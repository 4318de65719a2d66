"""tools/export.py: an ONNX file with dynamic sizes whose onnxruntime output matches PyTorch."""

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from deeplab.builders.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from deeplab.model import input_statistics

from ..conftest import run_process, run_script


def export(*args: str):
    return run_script("tools/export.py", *args)


@pytest.fixture
def checkpoint(trained_run):
    return trained_run / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_export_round_trip_with_dynamic_sizes(checkpoint, tmp_path):
    path = tmp_path / "model.onnx"
    result = export(f"ckpt_path={checkpoint}", f"output={path}", "example_size=[97,129]", "check_size=[65,81]")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["onnx"] == str(path) and report["max_abs_diff"] <= 1e-4
    assert report["folded"] is True and report["batch_norm_nodes"] == 0  # all folded into the convolutions
    assert report["images_per_sec"]["onnxruntime"] > 0 and report["images_per_sec"]["pytorch"] > 0
    assert report["checked_sizes"] == [[2, 97, 129], [1, 65, 81]]

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1] == 3 and all(isinstance(d, str) for d in dims[2:]), dims
    metadata = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert metadata["class_names"] == ["background", "blob", "ring", "stripes", "checker"]
    # the statistics the run normalised with: its encoder's (timm's test_resnet: 0.5, not ImageNet's)
    assert metadata["mean"] == pytest.approx(list(input_statistics("tu-test_resnet")[0])) == [0.5, 0.5, 0.5]

    # An independent check at a size neither the export nor the tool's check used.
    model, _ = model_from_checkpoint(checkpoint)
    image = torch.randn(3, 3, 50, 171, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model(image).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"image": image.numpy()})
    assert logits.shape == (3, 5, 50, 171)
    assert np.abs(logits - expected).max() <= 1e-4


@pytest.mark.slow
def test_export_check_fails_loudly(checkpoint, tmp_path):
    result = export(f"ckpt_path={checkpoint}", f"output={tmp_path / 'm.onnx'}", "example_size=[65,65]",
                    "check_size=[33,33]", "tolerance=1e-12")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'm.onnx'}: onnxruntime and PyTorch logits differ by up to")


class CreatesFile:
    """A pickle payload: unpickling it would create a file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_bad_checkpoints_are_refused_in_one_line(tmp_path, checkpoint):
    planted = tmp_path / "code_ran"
    torch.save({"state_dict": {}, "payload": CreatesFile(planted)}, tmp_path / "evil.ckpt")
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    data = checkpoint.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    cases = {
        tmp_path / "missing.ckpt": "does not exist",
        tmp_path / "evil.ckpt": "is refused: loading it would call ",
        tmp_path / "notes.txt": "is not a PyTorch checkpoint",
        tmp_path / "cut.ckpt": "is not a PyTorch checkpoint",
        tmp_path / "foreign.ckpt": "is not a checkpoint written by train.py",
    }
    for path, message in cases.items():
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        assert str(err.value).startswith(f"ckpt_path={path} {message}") and "\n" not in str(err.value)
    assert not planted.exists()

    result = export(f"ckpt_path={tmp_path / 'evil.ckpt'}")  # the command line says the same, in one line
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: ckpt_path={tmp_path / 'evil.ckpt'} is refused")
    assert not planted.exists() and not list(tmp_path.glob("*.onnx"))
    missing = export()
    assert missing.returncode == 2 and missing.stderr == "error: ckpt_path is required; give it on the command " \
                                                         "line: ckpt_path=VALUE\n"


@pytest.mark.slow
def test_folded_and_unfolded_exports_agree(checkpoint, tmp_path):
    """torch's exporter folds batch norm into the convolutions itself: both graphs are the same
    size, without BatchNormalization nodes, and both match the model as trained."""
    reports = {}
    for fold in ("true", "false"):
        result = export(f"ckpt_path={checkpoint}", f"output={tmp_path / f'{fold}.onnx'}", "example_size=[65,65]",
                        "check_size=[33,49]", f"fold={fold}")
        assert result.returncode == 0, result.stderr[-3000:]
        reports[fold] = json.loads(result.stdout.strip().splitlines()[-1])
    folded, plain = reports["true"], reports["false"]
    assert (folded["folded"], plain["folded"]) == (True, False)
    assert folded["batch_norm_nodes"] == plain["batch_norm_nodes"] == 0 and folded["nodes"] == plain["nodes"]
    assert folded["max_abs_diff"] <= 1e-4 and plain["max_abs_diff"] <= 1e-4


@pytest.mark.slow
def test_int8_folder_is_calibrated_checked_and_measured(checkpoint, trained_run, tmp_path):
    """format=onnx-int8: an INT8 QDQ graph with per-channel weights, its masks measured against
    PyTorch's on the whole val split; the FP32 side of that measurement is eval.py's own mIoU."""
    folder = tmp_path / "int8"
    result = run_process("tools/export.py", f"ckpt_path={checkpoint}", "format=onnx-int8", f"output={folder}",
                         "example_size=[65,65]", "calibration_images=8")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "export.json", "model.onnx",
                                                        "preprocessing.json"]
    assert json.loads((folder / "export.json").read_text()) == report
    assert report["calibration_images"] == 8 and report["images"] == 12 and report["check_split"] == "val"
    assert 0.9 <= report["agreement"] <= 1 and report["kept_fp32"] == []
    assert report["mIoU_drop_points"] == pytest.approx(100 * (report["mIoU_reference"] - report["mIoU_converted"]))
    assert report["images_per_sec"]["onnx-int8"] > 0 and report["images_per_sec"]["pytorch"] > 0
    assert json.loads((folder / "config.json").read_text())["format"] == "deeplab-onnx-int8/1"

    graph = onnx.load(str(folder / "model.onnx")).graph
    operators = [node.op_type for node in graph.node]
    assert operators.count("QuantizeLinear") > 0 and operators.count("DequantizeLinear") > 0
    weights = {i.name: i for i in graph.initializer}
    quantized = [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in weights
                 and weights[n.input[0]].data_type == onnx.TensorProto.INT8]
    per_channel = [n for n in quantized if len(weights[n.input[1]].dims) == 1 and weights[n.input[1]].dims[0] > 1]
    assert per_channel, "no convolution weight is quantised per output channel"

    evaluated = run_process("eval.py", f"ckpt_path={checkpoint}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["mIoU_reference"] == pytest.approx(metrics["mIoU"], abs=1e-6)


@pytest.mark.slow
def test_int8_keeps_the_named_nodes_in_fp32(checkpoint, tmp_path):
    first = run_process("tools/export.py", f"ckpt_path={checkpoint}", "format=onnx-int8", f"output={tmp_path / 'all'}",
                   "example_size=[65,65]", "calibration_images=4", "check_images=2", "keep_fp32=auto")
    assert first.returncode == 0, first.stderr[-3000:]
    graph = onnx.load(str(tmp_path / "all" / "model.onnx")).graph
    convolution = next(n for n in graph.node if n.op_type == "Conv")
    auto = json.loads(first.stdout.strip().splitlines()[-1])
    ratios = auto["convolution_sqnr_db"]  # the convolutions measured, the noisiest first
    convolutions = [n.name for n in graph.node if n.op_type == "Conv"]
    assert ratios and set(ratios) <= set(convolutions)
    assert list(ratios.values()) == sorted(ratios.values())
    assert auto["kept_fp32"] == [name for name, db in ratios.items() if db < 20.0][:8]
    kept = run_process("tools/export.py", f"ckpt_path={checkpoint}", "format=onnx-int8", f"output={tmp_path / 'kept'}",
                  "example_size=[65,65]", "calibration_images=4", "check_images=2", f"keep_fp32=[{convolution.name}]")
    assert kept.returncode == 0, kept.stderr[-3000:]
    assert json.loads(kept.stdout.strip().splitlines()[-1])["kept_fp32"] == [convolution.name]
    nodes = onnx.load(str(tmp_path / "kept" / "model.onnx")).graph.node
    producers = {output: node.op_type for node in nodes for output in node.output}
    same = next(n for n in nodes if n.name == convolution.name)
    assert producers.get(same.input[1]) != "DequantizeLinear"  # its weight is the FP32 tensor itself


@pytest.mark.slow
@pytest.mark.parametrize("package, fmt", [("onnxruntime", "onnx-int8"), ("openvino", "openvino"),
                                          ("nncf", "openvino-int8")])
def test_a_missing_deploy_package_is_one_line(package, fmt, checkpoint, tmp_path):
    blocked = tmp_path / "blocked" / package
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text(f"raise ImportError('No module named {package}')\n")
    result = run_process("tools/export.py", f"ckpt_path={checkpoint}", f"format={fmt}",
                         f"output={tmp_path / 'out'}", env={"PYTHONPATH": str(tmp_path / "blocked")})
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert result.stderr == f"error: format={fmt} needs {package}, which is not installed; install it with " \
                            "pip install 'deeplab[deploy]'\n"
    assert not (tmp_path / "out").exists()


def test_auto_keeps_the_noisiest_convolutions_below_the_bound():
    from deeplab.deploy.int8 import AUTO_MAX_KEPT, AUTO_MIN_SQNR_DB, noisiest

    ratios = {f"conv{i}": AUTO_MIN_SQNR_DB - 10 + i for i in range(20)}  # conv0..conv9 below the bound
    assert noisiest(ratios) == [f"conv{i}" for i in range(AUTO_MAX_KEPT)]
    assert noisiest({"a": AUTO_MIN_SQNR_DB, "b": 40.0}) == []
