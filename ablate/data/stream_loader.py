"""A loader for datasets too large for device memory: a torch DataLoader whose worker
processes decode and augment, with batches moved to the training device."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from .base import Loader, epoch_seed


class StreamLoader(Loader):
    """Batches (x, y) of a map-style `dataset` of (normalised image tensor, label) pairs,
    on `device`.

    The shuffle order of epoch e comes from a generator seeded by (seed, epoch), and
    so do the seeds of that epoch's worker processes, so with num_workers >= 1 the
    augmentation of epoch e is reproducible too; with num_workers = 0 the transforms
    draw from torch's global generator. Each pass runs as `epoch` and then advances it.
    """

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
        loader = DataLoader(self.dataset, batch_size=self.batch_size, shuffle=self.shuffle,
                            drop_last=self.drop_last, num_workers=self.num_workers,
                            pin_memory=on_cuda, generator=generator)
        for x, y in loader:
            yield x.to(self.device, non_blocking=on_cuda), y.to(self.device, non_blocking=on_cuda)
