"""Datasets for the engine: where each comes from, its validation split, and loaders
that yield normalised (x, y) batches on the training device.

    bundle = load_data("cifar10", root="data", device="cuda", val_size=5000)
    bundle.info.num_classes, bundle.info.image_size      # for the backbone
    for x, y in bundle.train: ...                        # augmented, shuffled
    evaluate(bundle.val); report(evaluate(bundle.test))  # select on val, report test

Everything up to CIFAR size is held as one tensor on the device and batched there
(DeviceLoader); ImageFolder streams through a DataLoader (StreamLoader). Each dataset's
module ends with its DatasetSpec; a new dataset is one module and one entry in DATASETS.

torchvision is imported inside the functions that read its datasets or build its
transforms, never at a module's top: its import loads all its models and torch._dynamo
(1.1 to 1.4 s of every process's start on a 2-core CPU), which a study on digits or
Fashion-MNIST from local files never needs (tests/test_models.py checks it stays so).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..registry import Registry
from . import digits, fashion_mnist, imagefolder, torchvision_sets
from .base import (DataBundle, DataError, DataInfo, DatasetShape, DatasetSpec, ImageArrays, Loader,
                   drop_last_for_training)
from .device_loader import DeviceLoader
from .split import holdout_split
from .stream_loader import StreamLoader

__all__ = ["DATASETS", "DataBundle", "DataError", "DataInfo", "DatasetShape", "DatasetSpec", "DeviceLoader",
           "Loader", "StreamLoader", "load_data"]

DATASETS: Registry[DatasetSpec] = Registry(
    "dataset", (digits.DATASET, fashion_mnist.DATASET, *torchvision_sets.DATASETS, imagefolder.DATASET),
    error=DataError)


def load_data(name: str, *, root: str | Path | None = None, download: bool = False,
              val_size: float | int = 0.1, split_seed: int = 0, train_subset: int | None = None,
              device: str | torch.device = "cpu", augment: bool = True, image_size: int | None = None,
              num_workers: int = 2, batch_size: int = 128, eval_batch_size: int | None = None,
              seed: int = 0) -> DataBundle:
    """Read dataset `name` and build its train, validation and test loaders.

    root: the data root, the only place looked in when given (default:
    $ABLATE_DATA_ROOT, else ~/.cache/ablate/data, then a system copy such as Debian's
    Fashion-MNIST); imagefolder needs one. download: let torchvision fetch missing files (all but
    digits, which is bundled, and imagefolder, which is yours).
    val_size: held out from the training set (a fraction in (0, 1), a count, or 0 for
    none), by a permutation seeded with split_seed alone. train_subset: keep only the
    first K of the remaining (permuted) training examples. seed: the training loader's
    shuffle and augmentation seed. eval_batch_size defaults to batch_size.
    Missing or unreadable data raises DataError, with a one-line message, before any
    tensor reaches the device.
    """
    dataset = DATASETS[name]
    for label, size in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
        if size is not None and size < 1:
            raise DataError(f"{label} must be >= 1, got {size}")
    eval_batch_size = eval_batch_size or batch_size
    if dataset.stream is not None:
        return dataset.stream(None if root is None else Path(root), val_size=val_size, split_seed=split_seed,
                              train_subset=train_subset, image_size=image_size, augment=augment,
                              batch_size=batch_size, eval_batch_size=eval_batch_size,
                              num_workers=num_workers, device=device, seed=seed)
    arrays = _read_arrays(dataset, Path(root) if root is not None else None, download)
    if image_size is not None and image_size != arrays.image_size:
        folders = ", ".join(n for n, d in DATASETS.items() if d.stream is not None)
        raise DataError(f"{name}: images are {arrays.image_size}x{arrays.image_size}; image_size "
                        f"{image_size} applies to {folders} only")
    return _device_bundle(arrays, val_size=val_size, split_seed=split_seed, train_subset=train_subset,
                          device=torch.device(device), augmentation=dataset.augmentation if augment else None,
                          batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed)


def _read_arrays(dataset: DatasetSpec, root: Path | None, download: bool) -> ImageArrays:
    arrays = dataset.read(root, download)
    name = dataset.name
    for part, labels in (("training", arrays.train_labels), ("test", arrays.test_labels)):
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < arrays.num_classes:
            raise DataError(f"{name}: {part} labels outside 0..{arrays.num_classes - 1}; the files are not {name}")
    return arrays


def _device_bundle(arrays: ImageArrays, *, val_size: float | int, split_seed: int, train_subset: int | None,
                   device: torch.device, augmentation, batch_size: int, eval_batch_size: int,
                   seed: int) -> DataBundle:
    train_index, val_index = holdout_split(len(arrays.train_labels), val_size, split_seed, train_subset)
    train_index, val_index = torch.from_numpy(train_index), torch.from_numpy(val_index)
    norm = dict(mean=arrays.mean, std=arrays.std)

    def on_device(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return images.to(device).contiguous(), labels.to(device)

    train = DeviceLoader(*on_device(arrays.train_images[train_index], arrays.train_labels[train_index]),
                         batch_size=batch_size, shuffle=True,
                         drop_last=drop_last_for_training(len(train_index), batch_size),
                         augmentation=augmentation, seed=seed, **norm)
    val = (DeviceLoader(*on_device(arrays.train_images[val_index], arrays.train_labels[val_index]),
                        batch_size=eval_batch_size, **norm) if len(val_index) else None)
    test = DeviceLoader(*on_device(arrays.test_images, arrays.test_labels), batch_size=eval_batch_size, **norm)
    info = DataInfo(name=arrays.name, num_classes=arrays.num_classes, channels=arrays.channels,
                    image_size=arrays.image_size, mean=arrays.mean, std=arrays.std,
                    train_size=train.num_examples, val_size=len(val_index), test_size=test.num_examples)
    return DataBundle(info=info, train=train, val=val, test=test)
