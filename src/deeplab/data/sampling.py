"""The training order as a pure function of (seed, epoch): a killed run resumes on the very sample,
with the very augmentation, that an uninterrupted run would have drawn next."""

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    """DistributedSampler's shuffle (a permutation seeded by seed + epoch, this rank's share of it),
    with two additions. Each draw carries its own augmentation seed, derived from (seed, epoch, rank,
    position), so augmentation depends neither on worker count nor on where a run was stopped. And
    `resume(epoch, samples)` makes the next pass over `epoch` skip the samples already trained on.
    Being a DistributedSampler, Lightning leaves it in place under DDP instead of wrapping it."""

    def __init__(self, dataset: Dataset, seed: int, num_replicas: int = 1, rank: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self._resume_at: tuple[int, int] | None = None

    def resume(self, epoch: int, samples: int) -> None:
        self._resume_at = (epoch, samples)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())
        seeds = np.random.SeedSequence([self.seed, self.epoch, self.rank]).generate_state(len(indices))
        start = 0
        if self._resume_at is not None and self._resume_at[0] == self.epoch:
            start = self._resume_at[1]
            self._resume_at = None  # later epochs start from their beginning
        for index, seed in zip(indices[start:], seeds[start:], strict=True):
            yield index, int(seed)
