"""The vocabulary of the data package: what a dataset is (DatasetSpec, registered in
`ablate.data.DATASETS`), its error, what a loaded dataset reports, and what a loader
promises."""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserInputError
from .augment import CropFlip


class DataError(UserInputError):
    """A dataset that cannot be loaded as asked; the message is one line that says which
    dataset, where it looked and how to get it."""


@dataclass(frozen=True)
class DataInfo:
    """What the backbone and the logs need to know about a loaded dataset."""

    name: str
    num_classes: int
    channels: int
    image_size: int  # side length of the square images the loaders yield
    mean: tuple[float, ...]  # per-channel normalisation applied to every batch
    std: tuple[float, ...]
    train_size: int  # examples in the training part (after the validation split and subset)
    val_size: int  # examples held out from the training set for model selection (0: none)
    test_size: int  # the official test set, evaluated separately and never selected on


class Loader(abc.ABC):
    """An iterable of (x float32 normalised, y int64) batches, both on the training device.

    Each pass runs as `epoch` and then advances it, so a loop that never calls
    set_epoch still sees a new order every epoch; `set_epoch(e)` makes the next pass
    epoch e (how a resumed run continues where it stopped)."""

    batch_size: int
    drop_last: bool
    epoch: int = 0  # the epoch the next pass runs as
    # True: after shard(rank, world) the loader yields only that rank's equal slice of each
    # global batch (it decodes no more than that); False: it yields global batches and the
    # training loop slices them (free for data already on the device)
    slices_batches: bool = False

    def shard(self, rank: int, world: int) -> None:
        """Make this loader one of `world` ranks' (a no-op unless it slices batches itself)."""
        self.rank, self.world = rank, world

    @property
    @abc.abstractmethod
    def num_examples(self) -> int: ...

    @abc.abstractmethod
    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def __len__(self) -> int:
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch `epoch`."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self._batches(epoch)


@dataclass
class DataBundle:
    info: DataInfo
    train: Loader
    val: Loader | None  # None when val_size == 0
    test: Loader


@dataclass(frozen=True)
class ImageArrays:
    """A small dataset read whole into memory, as a source hands it over: images
    (N, C, H, W) as uint8 in 0..255 or float32 in [0, 1], labels int64 in 0..K-1."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def channels(self) -> int:
        return self.train_images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train_images.shape[-1]


@dataclass(frozen=True)
class DatasetShape:
    """What the backbone sees of a dataset, known without reading it."""

    channels: int
    image_size: int
    num_classes: int
    train_size: int | None  # examples in the training set before the validation split (None: the folder's)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: everything the loaders, the settings, the study files and the CLI know
    about it. Either `read` (a set small enough to hold whole: its arrays, batched on the
    training device) or `stream` (a folder read image by image) is given."""

    name: str
    shape: DatasetShape
    source: str  # where the images come from, in a few words
    augmentation: CropFlip | None  # the paper's training augmentation, when it is applied on the device
    augmentation_text: str  # the training augmentation, in a few words
    how_to_get: str  # what to do when the data is missing
    read: Callable[[Path | None, bool], ImageArrays] | None = None  # (root or None: the default, download) -> arrays
    stream: Callable[..., "DataBundle"] | None = None  # (root, **loader options) -> bundle
    downloadable: bool = False  # `download` can fetch it
    needs_root: bool = False  # there is no default place to find it
    # why the files are not where `read` looks (root None: the default places), without the fix; None: present
    missing: Callable[[Path | None], str | None] | None = None


def default_root() -> Path:
    """Where datasets live when no root is given: $ABLATE_DATA_ROOT, else ~/.cache/ablate/data."""
    return Path(os.environ.get("ABLATE_DATA_ROOT") or Path.home() / ".cache" / "ablate" / "data")


def epoch_seed(seed: int, epoch: int) -> int:
    """A 64-bit seed for one epoch of one run; nearby (seed, epoch) pairs give unrelated
    streams, unlike seed + epoch, where run 1 epoch 0 would replay run 0 epoch 1."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])


def drop_last_for_training(num_examples: int, batch_size: int) -> bool:
    """Keep the last, smaller training batch unless it would hold a single example:
    batch normalisation cannot normalise over a batch of one."""
    return num_examples % batch_size == 1
