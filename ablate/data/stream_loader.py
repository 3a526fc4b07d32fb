"""A loader for datasets too large for device memory: a torch DataLoader whose worker
processes decode and augment, with batches moved to the training device."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from .base import Loader, epoch_seed


class StreamLoader(Loader):
    """Batches (x, y) of a map-style `dataset` of (normalised image tensor, label) pairs,
    on `device`.

    The shuffle order of epoch e comes from a generator seeded by (seed, epoch), and
    so do the seeds of that epoch's worker processes, so with num_workers >= 1 the
    augmentation of epoch e is reproducible too; with num_workers = 0 the transforms
    draw from torch's global generator. Each pass runs as `epoch` and then advances it.
    After `shard(rank, world)` its workers decode only this rank's slice of every global
    batch, trimmed to a multiple of `world` examples so that every slice has the same size
    (at most world - 1 examples of a batch are left out).
    """

    slices_batches = True
    rank, world = 0, 1

    def __init__(self, dataset: Dataset, *, batch_size: int, shuffle: bool = False,
                 drop_last: bool = False, num_workers: int = 2, device: str | torch.device = "cpu",
                 seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.num_workers = num_workers
        self.device = torch.device(device)
        self.seed = seed
        self.epoch = 0

    @property
    def num_examples(self) -> int:
        return len(self.dataset)

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator()
        generator.manual_seed(epoch_seed(self.seed, epoch))
        on_cuda = self.device.type == "cuda"
        order = (RandomSampler(self.dataset, generator=generator) if self.shuffle
                 else SequentialSampler(self.dataset))
        batches = _Slices(BatchSampler(order, self.batch_size, self.drop_last), self.rank, self.world)
        loader = DataLoader(self.dataset, batch_sampler=batches, num_workers=self.num_workers,
                            pin_memory=on_cuda, generator=generator)
        for x, y in loader:
            yield x.to(self.device, non_blocking=on_cuda), y.to(self.device, non_blocking=on_cuda)


class _Slices:
    """Rank `rank`'s equal slice of each batch of indices (all of it when alone)."""

    def __init__(self, batches: BatchSampler, rank: int, world: int):
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            size = len(batch) // self.world
            if size:
                yield batch[self.rank * size:(self.rank + 1) * size]
