"""`Segmenter`: a checkpoint's model as a Python object that predicts masks, for notebooks and
services. It runs predict.py's inference path (eval.fast's prepared model, the checkpoint's
normalisation and image size, grid padding, scales, flip), and predict.py runs through it, so the
masks of the two are the same bytes."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from PIL import Image, UnidentifiedImageError

from deeplab import CONF_DIR
from deeplab.builders.checkpoint import check_file, run_checkpoint
from deeplab.builders.data import image_size
from deeplab.builders.model import evaluation_task, inference_model, inference_settings, pick_device
from deeplab.builders.pretrained import save_pretrained
from deeplab.data.base import read_bands
from deeplab.deploy.backends import check_precision, load_model, runtime_device
from deeplab.errors import UserError
from deeplab.inference.multiscale import predict_classes, predict_probs
from deeplab.inference.pixels import normaliser
from deeplab.inference.prepare import autocast
from deeplab.schema import Eval, check

Picture = str | Path | Image.Image | np.ndarray


class Segmenter:
    def __init__(self, model: torch.nn.Module, config: DictConfig, evaluation: DictConfig, device: torch.device,
                 run_dir: Path | None = None):
        """`config`: the checkpoint's run config; `evaluation`: the eval group's settings, checked;
        `run_dir`: the run the checkpoint came from, for save_pretrained's model card."""
        self.network, self.run_dir = model, run_dir  # as trained: what save_pretrained writes
        if getattr(model, "exported", False):  # an exported graph runs on its runtime's CPU, as exported
            runtime_device(model, str(device))
            check_precision(model, evaluation.get("precision", "fp32"))
        model.set_output_stride(evaluation.output_stride or config.model.output_stride)
        self.model, self.precision = inference_model(model, evaluation, device)
        self.config, self.device = config, device
        self.task = evaluation_task(config, evaluation)  # eval.threshold, else the run's task.threshold
        self.settings = inference_settings(evaluation, config.data.crop_size, self.task)
        self.normalise = normaliser(config.data)
        self.size = image_size(config.data)  # a model trained at data.image_size sees photos at it too
        self.bands = config.data.get("in_channels", 3)
        self.class_names = list(config.data.class_names)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", output_stride: int | None = None,
                        scales: Sequence[float] = (1.0,), flip: bool = False, **evaluation) -> "Segmenter":
        """A checkpoint written by train.py, a run directory (its best checkpoint), a model folder
        (save_pretrained's), or a graph tools/export.py wrote (an .onnx file, an export folder). The
        other eval settings (mode, window, precision, fast, ...) are the eval group's defaults unless given."""
        ckpt = run_checkpoint(str(path)) or Path(path)
        check_file(ckpt)
        model, config = load_model(ckpt)
        settings = OmegaConf.load(CONF_DIR / "eval" / "default.yaml")
        unknown = sorted(set(evaluation) - set(settings))
        if unknown:
            raise UserError(f"{unknown[0]} is not an eval setting; allowed: {', '.join(settings)}")
        settings.merge_with({"output_stride": output_stride, "scales": [float(s) for s in scales], "flip": flip,
                             **evaluation})
        check(settings, Eval)  # named as given here: output_stride, not eval.output_stride
        run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None
        return cls(model, config, settings, pick_device(runtime_device(model, device)), run_dir)

    from_pretrained = from_checkpoint  # a model folder is one of the paths from_checkpoint reads

    def save_pretrained(self, folder: str | Path) -> Path:
        """The model as a self-contained folder (builders.pretrained): weights, config, preprocessing
        and a model card; from_pretrained, eval.py ckpt_path= and model.init_from= read it."""
        return save_pretrained(self.network, self.config, folder, self.run_dir)

    def probs(self, pixels: torch.Tensor) -> torch.Tensor:
        """Class probabilities (1, C, H, W) of one image given as read, (H, W, bands), at its own size
        (binary: (1, 1, H, W), the foreground's; multilabel: each label's)."""
        image = self.normalise(pixels.permute(2, 0, 1)[None].to(self.device))
        with autocast(self.precision, self.device):
            probs = predict_probs(self.model, at_training_size(image, self.size), **self.settings)
        if probs.shape[-2:] != image.shape[-2:]:  # back to the photo's own size
            probs = F.interpolate(probs.float(), size=image.shape[-2:], mode="bilinear", align_corners=False)
        return probs

    def predict(self, images: Picture | list[Picture], return_probs: bool = False):
        """Class-id masks (H, W, uint8 below 256 classes) at each input's size, for a path, a PIL
        image, an (H, W, C) NumPy array or a list of them (one at a time: sizes may differ);
        with `return_probs`, the class probabilities (C, H, W, float32) instead. A binary model
        gives 0/1 masks (H, W) and its foreground probability (1, H, W); a multilabel model 0/1
        masks (labels, H, W) and each label's probability (labels, H, W)."""
        single = not isinstance(images, list)
        results = []
        for image in [images] if single else images:
            probs = self.probs(torch.from_numpy(self._pixels(image)))
            if return_probs:
                results.append(probs[0].float().cpu().numpy())
            else:
                classes = predict_classes(probs, self.task)[0].cpu().numpy()
                results.append(classes.astype(np.uint8) if len(self.class_names) <= 256 else classes)
        return results[0] if single else results

    def _pixels(self, image: Picture) -> np.ndarray:
        if isinstance(image, str | Path):
            path = Path(image)
            if not path.is_file():
                raise UserError(f"{path} is not an image file")
            try:
                return read_image(path, self.bands)
            except (OSError, UnidentifiedImageError) as err:
                raise UserError(f"{path}: cannot read the image ({type(err).__name__}: {err})") from err
        if isinstance(image, Image.Image):
            return np.array(image.convert("RGB"))
        if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[-1] == self.bands:
            if image.dtype.kind == "f" and self.bands == 3:  # 0..1 or 0..255: either would run, one silently wrong
                raise UserError(f"an RGB image of {image.dtype} values cannot be predicted: give uint8 values 0..255 "
                                "(from 0..1 floats: (image * 255).round().astype(np.uint8))")
            if image.dtype.kind in "uif":  # values as stored, 0..data.max_pixel_value
                return np.ascontiguousarray(image, dtype=np.float32 if image.dtype.kind == "f" else None)
        shape = getattr(image, "shape", None)
        raise UserError(f"an image of type {type(image).__name__}{f' and shape {shape}' if shape else ''} cannot be "
                        f"predicted; give a path, a PIL image or an (H, W, {self.bands}) array")


def read_image(path: Path, bands: int) -> np.ndarray:
    """An image file as the model reads it: RGB, or the checkpoint's number of bands (.tif, .npy)."""
    if bands == 3 and path.suffix.lower() != ".npy":
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))  # writable, for torch.from_numpy
    return read_bands(path, bands)


def at_training_size(images: torch.Tensor, sides: tuple[int, int] | None) -> torch.Tensor:
    """Images at data.image_size ((height, width); None: as they are), as training read its data:
    area-like averaging when they shrink (antialiased bilinear), bilinear when they grow."""
    if sides is None or tuple(images.shape[-2:]) == sides:
        return images
    shrink = sides[0] * sides[1] < images.shape[-2] * images.shape[-1]
    return F.interpolate(images, size=sides, mode="bilinear", align_corners=False, antialias=shrink)
