"""`predict.py`: masks and overlays for image files, with the checkpoint's model and `eval.*`."""

import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from deeplab.builders.checkpoint import model_from_checkpoint
from deeplab.builders.model import inference_model, inference_settings, pick_device
from deeplab.data.base import as_rgb, read_bands
from deeplab.data.folder import IMAGE_SUFFIXES
from deeplab.data.palette import voc_palette
from deeplab.errors import UserError
from deeplab.inference.multiscale import predict_probs
from deeplab.inference.pixels import normaliser
from deeplab.inference.prepare import autocast
from deeplab.schema import validate_eval


class PredictError(UserError):
    """A bad input or output path; the message is one line."""


def list_images(source: Path) -> list[Path]:
    if not source.exists():
        raise PredictError(f"input={source} does not exist")
    if source.is_file():
        return [source]
    files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise PredictError(f"input={source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    stems = [p.stem for p in files]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise PredictError(f"input={source}: several images share the name {clashes[0]!r} "
                           f"({', '.join(p.name for p in files if p.stem == clashes[0])}); their outputs would clash")
    return files


def colour_map(colors, num_classes: int) -> np.ndarray:
    """One RGB row a class: the dataset's colours when its config has them, else VOC's colour map."""
    palette = np.asarray(colors, dtype=np.uint8) if colors else voc_palette()[:num_classes]
    return palette.reshape(-1, 3)


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))  # writable, for torch.from_numpy


def save_outputs(out: Path, stem: str, image: np.ndarray, classes: np.ndarray, palette: np.ndarray,
                 alpha: float) -> None:
    mask = Image.fromarray(classes.astype(np.uint8), mode="P")
    flat = np.zeros((256, 3), dtype=np.uint8)
    flat[: len(palette)] = palette
    mask.putpalette(flat.flatten().tolist())
    mask.save(out / f"{stem}.png")
    overlay = (1 - alpha) * image + alpha * palette[classes]
    Image.fromarray(overlay.round().astype(np.uint8)).save(out / f"{stem}_overlay.jpg", quality=92)


def predict(cfg: DictConfig) -> int:
    """Writes `<stem>.png` (class indices, palette PNG) and `<stem>_overlay.jpg` per image; returns
    the number of images that could not be read (each named on stderr; the rest are still done)."""
    validate_eval(cfg.eval)
    files = list_images(Path(cfg.input))
    out = Path(cfg.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PredictError(f"output={out} cannot be created ({err.strerror})") from err
    model, config = model_from_checkpoint(cfg.ckpt_path)
    device = pick_device(cfg.device)
    model.set_output_stride(cfg.eval.output_stride or config.model.output_stride)
    model, precision = inference_model(model, cfg.eval, device)
    settings = inference_settings(cfg.eval, config.data.crop_size)
    bands, scale = config.data.get("in_channels", 3), config.data.get("max_pixel_value", 255)
    normalise = normaliser(config.data)
    palette = colour_map(config.data.get("colors"), config.data.num_classes)
    failed = []
    for path in tqdm(files, desc="predict", unit="img", dynamic_ncols=True):
        try:  # the images the model was trained on: RGB, or the checkpoint's number of bands
            image = read_rgb(path) if bands == 3 and path.suffix.lower() != ".npy" else read_bands(path, bands)
        except (OSError, UnidentifiedImageError, ValueError) as err:  # DatasetError is a ValueError
            failed.append(path)
            tqdm.write(f"error: {path}: cannot read the image ({type(err).__name__}: {err})", file=sys.stderr)
            continue
        tensor = normalise(torch.from_numpy(image).permute(2, 0, 1)[None].to(device))
        with autocast(precision, device):
            classes = predict_probs(model, tensor, **settings).argmax(dim=1)[0].cpu().numpy()
        save_outputs(out, path.stem, as_rgb(image, scale), classes, palette, cfg.overlay_alpha)
    done = len(files) - len(failed)
    print(f"{done} of {len(files)} images: masks and overlays in {out}")
    if failed:
        print(f"error: {len(failed)} of {len(files)} images could not be read: "
              f"{', '.join(str(p) for p in failed)}", file=sys.stderr)
    return len(failed)
