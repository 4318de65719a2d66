"""`predict.py`: masks and overlays for image files, with the checkpoint's model and `eval.*`."""

import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from deeplab.builders.model import evaluation_task, pick_device
from deeplab.data.base import BAND_SUFFIXES, as_rgb
from deeplab.data.folder import IMAGE_SUFFIXES
from deeplab.data.preview import class_colours
from deeplab.deploy.backends import load_model, runtime_device
from deeplab.errors import UserError
from deeplab.evaluation.segmenter import Segmenter, read_image
from deeplab.inference.multiscale import predict_classes
from deeplab.inference.task import MULTICLASS, Task
from deeplab.schema import validate_predict


class PredictError(UserError):
    """A bad input or output path; the message is one line."""


def list_images(source: Path) -> list[Path]:
    if not source.exists():
        raise PredictError(f"input={source} does not exist")
    if source.is_file():
        return [source]
    files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    folders = [p for p in source.iterdir() if p.is_dir()]
    if folders:  # input is read one level deep: say so rather than leave those images out silently
        print(f"input={source}: {len(folders)} subfolder{'s' if len(folders) > 1 else ''} skipped "
              f"({', '.join(sorted(p.name for p in folders)[:3])}{', ...' if len(folders) > 3 else ''}); "
              "give each as input to predict its images", file=sys.stderr)
    if not files:
        raise PredictError(f"input={source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    stems = [p.stem for p in files]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise PredictError(f"input={source}: several images share the name {clashes[0]!r} "
                           f"({', '.join(p.name for p in files if p.stem == clashes[0])}); their outputs would clash")
    return files


def output_paths(out: Path, stem: str, labels: list[str] | None = None, probabilities: bool = False) -> list[Path]:
    """The files written for the image named `stem`: its mask (one a label under <label>/ for
    task=multilabel), its overlay, and with `probabilities` a probability map beside each mask."""
    masks = [out / label / f"{stem}.png" for label in labels] if labels else [out / f"{stem}.png"]
    maps = [mask.with_name(f"{stem}_prob.png") for mask in masks] if probabilities else []
    return [*masks, out / f"{stem}_overlay.jpg", *maps]


def check_output(source: Path, out: Path, files: list[Path], labels: list[str] | None = None,
                 probabilities: bool = False) -> None:
    """Nothing predict writes may replace an image it reads, and no output may land where a later
    run would read it as an input: refused before anything is written."""
    resolved = out.resolve()
    if source.is_dir() and (resolved == source.resolve() or source.resolve() in resolved.parents):
        raise PredictError(f"output={out} is inside input={source}: the masks would be written among the images "
                           "(and read as images by the next run); choose an output folder outside it")
    inputs = {p.resolve() for p in files}
    for path in files:
        for written in output_paths(out, path.stem, labels, probabilities):
            if written.resolve() in inputs:
                raise PredictError(f"output={out} would overwrite the input image {written}; choose another "
                                   "output folder")


class ImageFiles(Dataset):
    """The images to predict, decoded in loader workers while the model runs: (index, pixels as
    read), or (index, why it could not be read) so that one bad file does not stop the rest."""

    def __init__(self, files: list[Path], bands: int):
        self.files, self.bands = files, bands

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | str]:
        path = self.files[index]
        try:
            image = read_image(path, self.bands)
        except (OSError, UnidentifiedImageError, ValueError) as err:  # DatasetError is a ValueError
            return index, f"{type(err).__name__}: {err}"
        return index, image


def loader_workers(num_workers: int | str, device: torch.device) -> int:
    """Decoding in worker processes overlaps with inference where the model leaves the CPU free
    (on a GPU). On the CPU, inference already uses every core: 100 VOC-sized images with the quick
    start's ResNet-18 ran at 10.5 images/s read in the main process, 9.8-10.1 with 2 workers."""
    if num_workers == "auto":
        return 2 if device.type == "cuda" else 0
    return num_workers


def save_outputs(out: Path, stem: str, image: np.ndarray, classes: np.ndarray, palette: np.ndarray,
                 alpha: float, task: Task = MULTICLASS, labels: list[str] | None = None,
                 probs: np.ndarray | None = None) -> None:
    """multiclass: a palette PNG of class ids; binary: a 0/255 PNG of the foreground; multilabel: a
    0/255 PNG a label. The overlay blends each class's (foreground's, label's) colour into the image;
    `probs` (C, H, W) are written as 8-bit maps (0..255 for 0..1)."""
    paths = output_paths(out, stem, labels if task.name == "multilabel" else None, probs is not None)
    if task.name == "multiclass":
        mask = Image.fromarray(classes.astype(np.uint8), mode="P")
        flat = np.zeros((256, 3), dtype=np.uint8)
        flat[: len(palette)] = palette
        mask.putpalette(flat.flatten().tolist())
        mask.save(paths[0])
        overlay = (1 - alpha) * image + alpha * palette[classes]
    else:
        shown = classes[None] if task.name == "binary" else classes  # (labels, H, W) of 0/1
        colours = palette[1:2] if task.name == "binary" else palette
        overlay = image.astype(np.float32)
        for index, mask in enumerate(shown.astype(bool)):
            Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(paths[index])
            overlay[mask] = (1 - alpha) * overlay[mask] + alpha * colours[index]
    masks = len(labels) if task.name == "multilabel" else 1
    Image.fromarray(overlay.round().astype(np.uint8)).save(paths[masks], quality=92)
    for channel, path in zip(probs if probs is not None else [], paths[masks + 1:], strict=True):
        Image.fromarray((channel * 255).round().astype(np.uint8), mode="L").save(path)


def predict(cfg: DictConfig) -> int:
    """Writes `<stem>.png` (class indices, palette PNG; binary: 0/255; multilabel: `<label>/<stem>.png`
    a label) and `<stem>_overlay.jpg` per image, with predict.probabilities `_prob.png` maps; returns
    the number of images that could not be read (each named on stderr; the rest are still done)."""
    validate_predict(cfg)
    files = list_images(Path(cfg.input))
    out = Path(cfg.output)
    model, config = load_model(cfg.ckpt_path)  # a checkpoint, a model folder, or an exported graph
    device = pick_device(runtime_device(model, cfg.device))  # before any folder is made
    task, probabilities = evaluation_task(config, cfg.eval), bool(cfg.predict.probabilities)
    if probabilities and task.name == "multiclass":
        raise PredictError("predict.probabilities=true is not allowed with the multiclass model of ckpt_path="
                           f"{cfg.ckpt_path}; allowed: false (the probability maps are task=binary's and multilabel's; "
                           "Segmenter.predict(..., return_probs=True) gives every class's)")
    labels = list(config.data.class_names) if task.name == "multilabel" else None
    check_output(Path(cfg.input), out, files, labels, probabilities)
    try:
        for folder in [out] + [out / label for label in labels or []]:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PredictError(f"output={out} cannot be created ({err.strerror})") from err
    segmenter = Segmenter(model, config, cfg.eval, device)  # the Python API's inference, the same bytes
    bands, scale = config.data.get("in_channels", 3), config.data.get("max_pixel_value", 255)
    unreadable = [p for p in files if p.suffix.lower() not in BAND_SUFFIXES]
    if bands != 3 and len(unreadable) == len(files):  # not one failure a file: one line for the mismatch
        kinds = ", ".join(sorted({p.suffix for p in files}))
        raise PredictError(f"ckpt_path={cfg.ckpt_path} holds a model of {bands}-band images (data.in_channels="
                           f"{bands}), read from {', '.join(BAND_SUFFIXES)} files; input={cfg.input} has "
                           f"{len(files)} {kinds} images of at most 3 channels")
    palette = class_colours(config.data.get("colors"), config.data.num_classes)
    failed = []
    loader = DataLoader(ImageFiles(files, bands), batch_size=None, num_workers=loader_workers(cfg.num_workers, device))
    with ThreadPoolExecutor(max_workers=1) as writer:  # PNG and JPEG encoding overlap with the next image
        pending = deque()
        for index, pixels in tqdm(loader, total=len(files), desc="predict", unit="img", dynamic_ncols=True):
            path = files[index]
            if isinstance(pixels, str):
                failed.append(path)
                tqdm.write(f"error: {path}: cannot read the image ({pixels})", file=sys.stderr)
                continue
            probs = segmenter.probs(pixels)
            classes = predict_classes(probs, task)[0].cpu().numpy()
            maps = probs[0].float().cpu().numpy() if probabilities else None
            pending.append(writer.submit(save_outputs, out, path.stem, as_rgb(pixels.numpy(), scale), classes,
                                         palette, cfg.overlay_alpha, task, labels, maps))
            while len(pending) > 2:  # a bounded queue: a slow disk holds inference back, not memory
                pending.popleft().result()
        for written in pending:
            written.result()  # a failed write raises here
    done = len(files) - len(failed)
    print(f"{done} of {len(files)} images: masks and overlays in {out}")
    if failed:
        print(f"error: {len(failed)} of {len(files)} images could not be read: "
              f"{', '.join(str(p) for p in failed)}", file=sys.stderr)
    return len(failed)


def main(cfg: DictConfig) -> None:
    """predict.py's task: exit status 1 when some images could not be read (named above); the
    readable ones are done."""
    if predict(cfg):
        sys.exit(1)
