"""The split a checkpoint's config describes, for evaluation: plain PyTorch data, whole images as
read (no Lightning, no augmentation); normalise them on the device with inference.pixels.normaliser."""

import torch
from omegaconf import DictConfig, ListConfig
from torch.utils.data import DataLoader

from deeplab.data.base import image_sides, keep_fold, open_split
from deeplab.data.transforms import evaluation


def prepare_data(data: DictConfig) -> None:
    """The dataset's preparation step, where it has one (the synthetic set is written, VOC's
    palette masks are converted); real data is only read."""
    from hydra.utils import instantiate  # here, not at the top: Segmenter reads this module without Hydra

    if data.get("prepare"):
        instantiate(data.prepare)()


def label_map(data: DictConfig) -> dict | None:
    """data.label_map as plain {stored value: class id or None}; configs stored before it existed have none."""
    from omegaconf import OmegaConf

    mapping = data.get("label_map")
    return {int(k): v for k, v in OmegaConf.to_container(mapping).items()} if mapping else None


def image_size(data: DictConfig) -> tuple[int, int] | None:
    """data.image_size as (height, width); configs stored before it existed have none."""
    size = data.get("image_size")
    return image_sides(list(size) if isinstance(size, ListConfig) else size)


def evaluation_loader(data: DictConfig, split: str) -> DataLoader:
    from hydra.utils import instantiate

    to_tensor = evaluation()  # callers normalise on the device (deeplab.inference.pixels)
    fold = data.get("fold")
    if fold is not None and split == data.val_split:  # a cross-validation run: its held-out fold
        opened = open_split(instantiate(data.dataset), data.train_split, to_tensor, data.num_classes,
                            data.ignore_index, label_map(data), image_size(data))
        dataset = keep_fold(opened, fold, data.num_folds, held_out=True)
    else:
        dataset = open_split(instantiate(data.dataset), split, to_tensor, data.num_classes, data.ignore_index,
                             label_map(data), image_size(data))
    # Whole images of different sizes: one per batch unless the config says otherwise.
    return DataLoader(dataset, batch_size=data.val_batch_size, num_workers=data.num_workers,
                      pin_memory=bool(data.pin_memory) and torch.cuda.is_available())  # only a GPU gains
