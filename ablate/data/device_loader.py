"""A loader for datasets small enough to live on the training device as one tensor.

Batches are cut from that tensor by index and augmented and normalised there, so an
epoch costs a few kernel launches per batch instead of a per-image Python pipeline.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from .base import Loader, epoch_seed

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class DeviceLoader(Loader):
    """Batches (x, y) of `images` (N, C, H, W; uint8 0..255 or float in [0, 1]) and
    `labels` (N,), both already on the device that x and y are yielded on.

    The shuffle order and every augmentation draw of a pass come from one generator
    seeded by (seed, epoch), so epoch e is the same whenever it is run: resuming at
    epoch e needs only `set_epoch(e)`. Each pass runs as `epoch` and then advances it,
    so a loop that never calls set_epoch still sees a new order every epoch.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int,
                 shuffle: bool = False, drop_last: bool = False,
                 augmentation: Augmentation | None = None,
                 mean: tuple[float, ...], std: tuple[float, ...], seed: int = 0):
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"{images.shape[0]} images but labels of shape {tuple(labels.shape)}")
        if labels.device != images.device:
            raise ValueError(f"images on {images.device} but labels on {labels.device}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(mean) != images.shape[1] or len(std) != images.shape[1]:
            raise ValueError(f"{images.shape[1]} channels but mean/std of length {len(mean)}/{len(std)}")
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0
        self._mean = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def num_examples(self) -> int:
        return self.images.shape[0]

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator(device=self.device)
        generator.manual_seed(epoch_seed(self.seed, epoch))
        order = (torch.randperm(self.num_examples, generator=generator, device=self.device)
                 if self.shuffle else None)
        for i in range(len(self)):
            start, stop = i * self.batch_size, min((i + 1) * self.batch_size, self.num_examples)
            index = order[start:stop] if order is not None else slice(start, stop)
            yield self._prepare(self.images[index], generator), self.labels[index]

    def _prepare(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = images.to(torch.float32)
        if images.dtype == torch.uint8:
            x = x / 255.0
        if self.augmentation is not None:
            x = self.augmentation(x, generator)
        return (x - self._mean) / self._std
