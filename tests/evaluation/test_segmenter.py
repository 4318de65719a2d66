"""Segmenter: a checkpoint's model in Python, whose masks are predict.py's, byte for byte."""

import numpy as np
import pytest
from PIL import Image

import deeplab
from deeplab.errors import UserError

from ..conftest import VOC_SAMPLES, run_script

pytestmark = pytest.mark.skipif(not VOC_SAMPLES.is_dir(), reason="../shared/data/voc2012_samples is absent")


@pytest.mark.slow
@pytest.mark.parametrize("eval_args, settings", [
    ([], {}),
    (["eval.scales=[0.75,1.0]", "eval.flip=true", "os=8"], {"scales": (0.75, 1.0), "flip": True, "output_stride": 8}),
])
def test_masks_equal_predict_py_on_the_voc_samples(eval_args, settings, trained_run, tmp_path):
    images = sorted((VOC_SAMPLES / "JPEGImages").glob("*.jpg"))
    assert len(images) == 9
    result = run_script("predict.py", f"ckpt_path={trained_run}", f"input={VOC_SAMPLES / 'JPEGImages'}",
                        f"output={tmp_path / 'masks'}", "num_workers=0", *eval_args)
    assert result.returncode == 0, result.stderr[-2000:]
    segmenter = deeplab.Segmenter.from_checkpoint(trained_run, device="cpu", **settings)
    masks = segmenter.predict([str(p) for p in images])
    for path, mask in zip(images, masks, strict=True):
        written = np.array(Image.open(tmp_path / "masks" / f"{path.stem}.png"))
        assert mask.dtype == np.uint8 and mask.shape == written.shape
        assert mask.tobytes() == written.tobytes(), path.name

    with Image.open(images[0]) as photo:  # the other kinds of input give the same mask
        assert segmenter.predict(photo).tobytes() == masks[0].tobytes()
        assert segmenter.predict(np.array(photo)).tobytes() == masks[0].tobytes()
        probs = segmenter.predict(photo, return_probs=True)
    assert probs.shape == (len(segmenter.class_names), *masks[0].shape)
    assert np.allclose(probs.sum(0), 1, atol=1e-4) and (probs.argmax(0) == masks[0]).all()


def test_a_bad_image_or_setting_is_one_line(trained_run, tmp_path):
    segmenter = deeplab.Segmenter.from_checkpoint(trained_run, device="cpu")
    with pytest.raises(UserError, match=r"^an image of type ndarray and shape \(4, 5\) cannot be predicted"):
        segmenter.predict(np.zeros((4, 5), np.uint8))
    with pytest.raises(UserError, match="^an RGB image of float64 values cannot be predicted: give uint8 values"):
        segmenter.predict(np.random.default_rng(0).random((4, 5, 3)))
    with pytest.raises(UserError, match="is not an image file"):
        segmenter.predict("no_such.jpg")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(UserError, match=f"^{truncated}: cannot read the image"):
        segmenter.predict(str(truncated))
    with pytest.raises(UserError, match="^scale is not an eval setting; allowed: output_stride, scales"):
        deeplab.Segmenter.from_checkpoint(trained_run, scale=2)
    with pytest.raises(UserError, match="^output_stride=12 is not allowed"):
        deeplab.Segmenter.from_checkpoint(trained_run, output_stride=12)
