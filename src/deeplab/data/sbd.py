"""VOC 2012 plus the SBD annotations (Hariharan et al. 2011): the paper's train_aug set.

`prepare_voc_aug` converts SBD's `cls/*.mat` labels to palette PNGs once, next to VOC's own, in
`SegmentationClassAug/`, and writes the standard `train_aug` list: VOC train plus SBD train and
val, minus VOC val (10,582 images on the full data). Where VOC has its own annotation (with the
255 void band along object borders), it is kept rather than SBD's."""

import json
import shutil
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from deeplab.data.palette import voc_palette
from deeplab.data.voc import VOC_HELP, read_split
from deeplab.errors import DatasetError

SBD_HELP = ("download benchmark.tgz (the Semantic Boundaries Dataset) and extract it so that data.sbd_root "
            "holds cls/, train.txt and val.txt")
AUG_DIR = "SegmentationClassAug"


def read_sbd_mask(path: Path) -> np.ndarray:
    """The class-id mask of one SBD `.mat` file (GTcls.Segmentation, uint8 class ids)."""
    try:
        content = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
        return np.asarray(content["GTcls"].Segmentation, dtype=np.uint8)
    except (OSError, ValueError, KeyError, AttributeError) as err:
        raise DatasetError(f"{path}: not an SBD label file ({type(err).__name__}: {err})") from err


def save_palette_png(mask: np.ndarray, path: Path) -> None:
    image = Image.fromarray(mask, mode="P")
    image.putpalette(voc_palette().flatten().tolist())
    image.save(path)


def prepare_voc_aug(root: str | Path, sbd_root: str | Path) -> Path:
    """Writes `root/SegmentationClassAug/*.png` and `root/ImageSets/Segmentation/train_aug.txt`
    once (a stamp file remembers it); returns the list file."""
    root, sbd_root = Path(root), Path(sbd_root)
    if not root.is_dir():
        raise DatasetError(f"data.root={root} does not exist; {VOC_HELP}")
    if not (sbd_root / "cls").is_dir():
        raise DatasetError(f"data.sbd_root={sbd_root} has no cls/ folder; {SBD_HELP}")
    lists = root / "ImageSets" / "Segmentation"
    voc_train, voc_val = read_split(lists / "train.txt"), read_split(lists / "val.txt")
    sbd_ids = read_split(sbd_root / "train.txt") + read_split(sbd_root / "val.txt")
    train_aug = sorted((set(voc_train) | set(sbd_ids)) - set(voc_val))
    out, stamp = root / AUG_DIR, root / AUG_DIR / ".prepared.json"
    recipe = {"sbd_root": str(sbd_root.resolve()), "train_aug": len(train_aug), "val": len(voc_val)}
    if stamp.is_file() and json.loads(stamp.read_text()) == recipe:
        return lists / "train_aug.txt"
    out.mkdir(exist_ok=True)
    for sample_id in sorted(set(train_aug) | set(voc_val)):
        voc_label = root / "SegmentationClass" / f"{sample_id}.png"
        if voc_label.is_file():
            shutil.copyfile(voc_label, out / f"{sample_id}.png")
        else:
            save_palette_png(read_sbd_mask(sbd_root / "cls" / f"{sample_id}.mat"), out / f"{sample_id}.png")
    (lists / "train_aug.txt").write_text("".join(f"{i}\n" for i in train_aug))
    stamp.write_text(json.dumps(recipe) + "\n")
    return lists / "train_aug.txt"
