"""The LightningDataModule: one dataset class, a train split with augmentation, a val split whole."""

import os
import signal
from collections.abc import Callable, Sequence
from functools import partial

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from lightning_fabric.utilities.seed import pl_worker_init_function
from omegaconf import DictConfig
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader

from deeplab.builders.data import image_size, label_map
from deeplab.data.base import keep_fold, open_split
from deeplab.data.check import absent_class_problem, single_class_split
from deeplab.data.sampling import ResumableSampler
from deeplab.data.transforms import evaluation
from deeplab.errors import DatasetError


class SegmentationDataModule(pl.LightningDataModule):
    """`dataset(split=..., transform=...)` builds a split; `prepare()`, when given, makes the data
    on disk first (the synthetic set) and runs once per node, before any process reads."""

    def __init__(self, dataset: Callable, num_classes: int, class_names: Sequence[str],
                 train_transform: Callable | None = None, prepare: Callable | None = None,
                 train_split: str = "train", val_split: str = "val", batch_size: int = 8,
                 val_batch_size: int = 1, num_workers: int = 2, pin_memory: bool = False,
                 prefetch_factor: int = 2, seed: int = 0, ignore_index: int = 255,
                 max_pixel_value: float = 255.0, fold: int | None = None, num_folds: int | None = None,
                 label_map: dict | None = None, image_size=None):
        super().__init__()
        self.dataset = dataset
        self.num_classes = num_classes
        self.class_names = list(class_names)
        self.ignore_index = ignore_index
        self.label_map = label_map  # stored mask values read as other class ids (data.label_map)
        self.image_size = image_size  # data.image_size: every sample read at this size; None: as stored
        self.train_transform = train_transform
        self.max_pixel_value = max_pixel_value  # to show images of other bands
        self.val_transform = evaluation()  # batches are normalised on the device, by the LightningModule
        self.prepare = prepare
        self.train_split, self.val_split = train_split, val_split
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.prefetch_factor = prefetch_factor
        self.seed = seed  # the training order and augmentation follow it alone
        self.fold, self.num_folds = fold, num_folds  # cross-validation: both sets come from the training split
        self.train_set = self.val_set = None
        self.train_sampler: ResumableSampler | None = None
        self._resume_position: dict | None = None

    def prepare_data(self) -> None:
        if self.prepare is not None:
            self.prepare()

    def check(self) -> None:
        """Opens both splits' lists and checks their files exist, when the data is already on disk
        (a `prepare` step writes or converts it first otherwise, and setup checks it then); raises
        DatasetError naming what is missing. tools/check_data.py reads every file."""
        if self.prepare is None:
            self.setup("fit")

    def check_classes(self) -> None:
        """The training split's masks hold more than one class, or no void: all but one class absent
        beside void pixels is masks that store the others under a value read as void (0/255 masks),
        and training would learn one class. Checked where check() opened the split (data already
        on disk)."""
        if self.train_set is None:
            return
        missing, void, total = single_class_split(self.train_set, self.num_classes, self.ignore_index)
        # a mask a label (multilabel) holds 0 and 1, whatever the label is called
        names = ["label absent", "label present"] if getattr(self.train_set, "labels", None) else self.class_names
        problem = absent_class_problem(self.train_split, missing, void, total, names, self.ignore_index)
        if problem:
            raise DatasetError(f"data.train_split={problem.removeprefix('split ')}; or train anyway with "
                               "check.classes=false")

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._split(self.train_split, self.train_transform, held_out=False)
            replicas = _world()[0]
            if len(self.train_set) // replicas < self.batch_size:
                # training drops an incomplete last batch: fewer images would train nothing at all
                per = f" ({replicas} processes share them)" if replicas > 1 else ""
                count = f"{len(self.train_set)} image" + ("" if len(self.train_set) == 1 else "s")
                raise DatasetError(f"data.train_split={self.train_split} has {count}{per}, fewer than "
                                   f"data.batch_size={self.batch_size} a step; lower data.batch_size or add images")
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._split(self.val_split, self.val_transform, held_out=True)  # empty lists are refused

    def _split(self, split: str, transform, held_out: bool):
        if self.fold is None:
            return open_split(self.dataset, split, transform, self.num_classes, self.ignore_index, self.label_map,
                              self.image_size)
        opened = open_split(self.dataset, self.train_split, transform, self.num_classes, self.ignore_index,
                            self.label_map, self.image_size)
        return keep_fold(opened, self.fold, self.num_folds, held_out)

    def _loader(self, dataset, batch_size: int, train: bool, sampler=None) -> DataLoader:
        workers = self.num_workers > 0
        return DataLoader(dataset, batch_size=batch_size, drop_last=train,
                          sampler=sampler, num_workers=self.num_workers, pin_memory=self._pin(),
                          persistent_workers=workers, prefetch_factor=self.prefetch_factor if workers else None,
                          worker_init_fn=partial(_worker_init, rank=_world()[1]) if workers else None)

    def _pin(self) -> bool:
        """data.pin_memory where batches go to a GPU; page-locked memory does nothing for the CPU
        (and PyTorch warns on every loader that asks for it there)."""
        if not self.pin_memory:
            return False
        if self.trainer is not None:
            return self.trainer.strategy.root_device.type == "cuda"
        return torch.cuda.is_available()

    def train_dataloader(self) -> DataLoader:
        replicas, rank = _world()
        self.train_sampler = ResumableSampler(self.train_set, seed=self.seed, num_replicas=replicas, rank=rank)
        if self._resume_position is not None:
            epoch = self._resume_position["epoch"]
            # Lightning draws the first iterator before it sets the epoch, and keeps it on a resume
            self.train_sampler.set_epoch(epoch)
            self.train_sampler.resume(epoch, self._resume_position["batches"] * self.batch_size)
        return self._loader(self.train_set, self.batch_size, train=True, sampler=self.train_sampler)

    def state_dict(self) -> dict:
        """Where training stands, saved in every checkpoint: the sampler epoch to continue and the
        batches of it this process has trained on. A checkpoint written once the epoch's batches
        are all done (at its end, or in the validation after its last batch) continues at the start
        of the next epoch: Lightning's own counters say different things in different hooks there."""
        if self.trainer is None or self.train_sampler is None:
            return {}
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.processed
        epoch = self.train_sampler.epoch
        if done >= self.trainer.num_training_batches:
            return {"epoch": epoch + 1, "batches": 0}
        return {"epoch": epoch, "batches": done}

    def load_state_dict(self, state: dict) -> None:
        self._resume_position = state or None

    def val_dataloader(self) -> DataLoader:
        # Whole images of different sizes: one per batch unless the user asks otherwise.
        sampler = None
        if _world()[0] > 1:
            # Each image on exactly one process: Lightning's default sampler pads the set with
            # repeats, which would count some images twice in the summed confusion matrix.
            sampler = UnrepeatedDistributedSampler(self.val_set, shuffle=False)
        return self._loader(self.val_set, self.val_batch_size, train=False, sampler=sampler)


def _worker_init(worker_id: int, rank: int) -> None:
    """Workers leave Ctrl-C to the main process, which finishes the step, saves and stops them: a
    worker the terminal's SIGINT kills mid-transfer would fail the main process's next batch with
    an unrelated error. Then Lightning's worker seeding, as it adds it to loaders without one."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if int(os.environ.get("PL_SEED_WORKERS", 0)):
        pl_worker_init_function(worker_id, rank=rank)


def _world() -> tuple[int, int]:
    """(processes, this one's rank) of the DDP group, (1, 0) outside one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


def build_datamodule(data: DictConfig, aug: DictConfig, seed: int = 0) -> SegmentationDataModule:
    return SegmentationDataModule(
        dataset=instantiate(data.dataset),
        prepare=instantiate(data.prepare) if data.get("prepare") else None,
        train_transform=instantiate(aug),
        num_classes=data.num_classes,
        class_names=list(data.class_names),
        ignore_index=data.ignore_index,
        train_split=data.train_split,
        val_split=data.val_split,
        batch_size=data.batch_size,
        val_batch_size=data.val_batch_size,
        num_workers=data.num_workers,
        pin_memory=data.pin_memory,
        prefetch_factor=data.get("prefetch_factor", 2),  # configs stored before the key existed
        seed=seed,
        max_pixel_value=data.get("max_pixel_value", 255),
        fold=data.get("fold"),
        num_folds=data.get("num_folds"),
        label_map=label_map(data),
        image_size=image_size(data),
    )

