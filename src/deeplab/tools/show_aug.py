"""tools/show_aug.py: the first `num` training samples as training draws them (the real DataModule,
the run's seed and augmentation), written as a grid of image and mask overlay."""

import pytorch_lightning as pl
from omegaconf import DictConfig
from PIL import Image

from deeplab.builders.model import resolve_normalisation
from deeplab.data.base import as_rgb
from deeplab.data.preview import class_colours, preview_grid
from deeplab.errors import ConfigError
from deeplab.schema import validate_show_aug
from deeplab.training.datamodule import build_datamodule


def draw_samples(cfg: DictConfig, num: int) -> tuple[list, list]:
    """The first `num` augmented training samples of the run `cfg` describes, in its order:
    images (H, W, 3 uint8, as shown) and masks (H, W)."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # as train.py seeds, before building
    datamodule = build_datamodule(cfg.data, cfg.aug, seed=cfg.seed)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    per_epoch = len(loader) * datamodule.batch_size
    if num > per_epoch:
        raise ConfigError(f"num={num} is not allowed; allowed: 1 .. {per_epoch} (the training batches of one "
                          f"epoch of data.train_split={datamodule.train_split})")
    images, masks = [], []
    for batch in loader:
        for pixels, mask in zip(batch["image"], batch["mask"], strict=True):
            images.append(as_rgb(pixels.permute(1, 2, 0).numpy(), datamodule.max_pixel_value))
            masks.append(mask.numpy())
        if len(images) >= num:
            break
    return images[:num], masks[:num]


def _aug_choice() -> str:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices.get("aug", "?") if HydraConfig.initialized() else "?"


def run(cfg: DictConfig) -> dict:
    validate_show_aug(cfg)
    resolve_normalisation(cfg)
    images, masks = draw_samples(cfg, cfg.num)
    colours = class_colours(cfg.data.get("colors"), cfg.data.num_classes)
    grid, corners = preview_grid(images, masks, colours, cfg.data.ignore_index, cfg.columns)
    Image.fromarray(grid).save(cfg.output)
    print(f"wrote {cfg.output}: {len(corners)} training samples after aug={_aug_choice()}, each image beside its "
          f"mask overlay ({grid.shape[1]}x{grid.shape[0]} pixels)")
    return {"output": cfg.output, "tiles": len(corners), "size": list(grid.shape[:2])}
