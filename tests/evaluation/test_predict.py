"""predict.py on real images: one palette mask and one overlay per image, at the image's size."""


import numpy as np
import pytest
from PIL import Image

from deeplab.data.palette import voc_palette

from ..conftest import VOC_SAMPLES, assert_one_line_error, run_entry, run_script


def run_predict(checkpoint, source, output, *args):
    return run_script("predict.py", f"ckpt_path={checkpoint}", f"input={source}", f"output={output}", *args)


@pytest.mark.skipif(not (VOC_SAMPLES / "JPEGImages").is_dir(), reason="the shared VOC samples are absent")
def test_predict_on_voc_samples(trained_run, tmp_path):
    images = sorted((VOC_SAMPLES / "JPEGImages").glob("*.jpg"))
    out = tmp_path / "pred"
    result = run_predict(trained_run / "checkpoints" / "best.ckpt", VOC_SAMPLES / "JPEGImages", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(images) == 9
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{p.stem}.png" for p in images] + [f"{p.stem}_overlay.jpg" for p in images])
    for path in images:
        with Image.open(path) as image, Image.open(out / f"{path.stem}.png") as mask, \
                Image.open(out / f"{path.stem}_overlay.jpg") as overlay:
            assert mask.mode == "P" and mask.size == image.size and overlay.size == image.size
            classes = np.asarray(mask)
            assert classes.max() < 5
            palette = np.asarray(mask.getpalette()[:15], dtype=np.uint8).reshape(5, 3)
            assert (palette == voc_palette()[:5]).all()
    assert "100%" in result.stderr  # the progress bar ran to the end


def test_unreadable_images_are_named_and_the_rest_done(trained_run, tmp_path, small_synthetic):
    source = tmp_path / "in"
    source.mkdir()
    good = sorted((small_synthetic / "synthetic_voc" / "JPEGImages").glob("*.jpg"))[:2]
    for path in good:
        (source / path.name).write_bytes(path.read_bytes())
    (source / "broken.jpg").write_text("not an image\n")
    (source / "cut.jpg").write_bytes(good[0].read_bytes()[:400])
    (source / "notes.txt").write_text("ignored: not an image name\n")
    out = tmp_path / "pred"
    result = run_predict(trained_run / "checkpoints" / "best.ckpt", source, out)
    assert result.returncode == 1
    assert f"error: {source / 'broken.jpg'}: cannot read the image" in result.stderr
    assert f"error: {source / 'cut.jpg'}: cannot read the image" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == (f"error: 2 of 4 images could not be read: "
                                                       f"{source / 'broken.jpg'}, {source / 'cut.jpg'}")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{p.stem}.png" for p in good] + [f"{p.stem}_overlay.jpg" for p in good])


def test_missing_input_is_one_line(trained_run, tmp_path):
    result = run_predict(trained_run / "checkpoints" / "best.ckpt", tmp_path / "nowhere", tmp_path / "o")
    assert result.returncode == 2
    assert result.stderr == f"error: input={tmp_path / 'nowhere'} does not exist\n"
    assert not (tmp_path / "o").exists()


def test_reading_in_workers_writes_what_the_main_process_writes(trained_run, tmp_path, small_synthetic):
    """num_workers=2 (decoding in loader processes, encoding in a thread) and num_workers=0 give
    the same files, byte for byte, and name the same unreadable image."""
    source = tmp_path / "in"
    source.mkdir()
    for path in sorted((small_synthetic / "synthetic_voc" / "JPEGImages").glob("*.jpg"))[:5]:
        (source / path.name).write_bytes(path.read_bytes())
    (source / "broken.png").write_text("not an image\n")
    outputs = {}
    for workers in (0, 2):
        out = tmp_path / f"pred{workers}"
        result = run_predict(trained_run / "checkpoints" / "best.ckpt", source, out, f"num_workers={workers}")
        assert result.returncode == 1, result.stderr[-2000:]
        assert f"error: {source / 'broken.png'}: cannot read the image (UnidentifiedImageError" in result.stderr
        outputs[workers] = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(outputs[0]) == 10 and outputs[0] == outputs[2]


@pytest.mark.parametrize("arg, message", [
    ("num_workers=-1", "num_workers=-1 is not allowed; allowed: auto or an integer >= 0 (auto: 2 with a GPU, 0 on "
                       "the CPU; 0: images are read in the main process)"),
    ("num_workers=two", "num_workers=two is not allowed; allowed: auto or an integer >= 0"),
    ("overlay_alpha=1.5", "overlay_alpha=1.5 is not allowed; allowed: a number from 0 to 1"),
])
def test_bad_predict_value_is_one_line(arg, message, trained_run, tmp_path, capsys, monkeypatch):
    code, stderr = run_entry("predict.py", f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}",
                             f"input={VOC_SAMPLES}", f"output={tmp_path / 'o'}", arg, capsys=capsys,
                             monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, message)
    assert not (tmp_path / "o").exists()


def test_a_model_trained_at_data_image_size_sees_photos_at_it(trained_run, tmp_path, capsys, monkeypatch):
    """data.image_size in the checkpoint: the photo reaches the model at that size, the mask comes
    back at the photo's size."""
    import torch

    import deeplab.evaluation.segmenter as segmenter_module
    from deeplab.builders.checkpoint import CONFIG_KEY, load_checkpoint

    checkpoint = load_checkpoint(trained_run / "checkpoints" / "best.ckpt")
    checkpoint[CONFIG_KEY]["data"]["image_size"] = [48, 64]
    resized = tmp_path / "resized.ckpt"
    torch.save(checkpoint, resized)
    source = tmp_path / "in"
    source.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (120, 150, 3), dtype=np.uint8)).save(source / "photo.png")
    seen = []
    original = segmenter_module.predict_probs

    def recording(model, images, **settings):
        seen.append(tuple(images.shape[-2:]))
        return original(model, images, **settings)

    monkeypatch.setattr(segmenter_module, "predict_probs", recording)  # predict.py infers through Segmenter
    code, stderr = run_entry("predict.py", f"ckpt_path={resized}", f"input={source}", f"output={tmp_path / 'out'}",
                             capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, stderr[-2000:]
    assert seen == [(48, 64)]
    with Image.open(tmp_path / "out" / "photo.png") as mask:
        assert mask.size == (150, 120)
