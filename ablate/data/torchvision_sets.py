"""CIFAR-10, SVHN and STL-10, read by torchvision's own dataset classes (which also
download them when asked) and taken over as whole uint8 arrays.

Each reads from the data root exactly where torchvision puts it: CIFAR-10 in
root/cifar-10-batches-py/, SVHN as root/train_32x32.mat and root/test_32x32.mat, STL-10
in root/stl10_binary/ (the labelled 'train' and 'test' splits only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .augment import CropFlip
from .base import DataError, DatasetShape, DatasetSpec, ImageArrays, default_root

# (images (N, C, H, W) uint8, labels (N,)) of the training or the test split
Reader = Callable[[Path, bool, bool], tuple[np.ndarray, np.ndarray]]


def _read_cifar10(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    import torchvision  # here, not at the top: see ablate/data/__init__.py

    dataset = torchvision.datasets.CIFAR10(str(root), train=train, download=download)
    return dataset.data.transpose(0, 3, 1, 2), np.asarray(dataset.targets)  # stored (N, H, W, C)


def _read_svhn(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    import torchvision  # here, not at the top: see ablate/data/__init__.py

    dataset = torchvision.datasets.SVHN(str(root), split="train" if train else "test", download=download)
    return dataset.data, dataset.labels  # torchvision already maps label 10 to digit 0


def _read_stl10(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    import torchvision  # here, not at the top: see ablate/data/__init__.py

    dataset = torchvision.datasets.STL10(str(root), split="train" if train else "test", download=download)
    return dataset.data, dataset.labels


@dataclass(frozen=True)
class TorchvisionSet:
    name: str
    read: Reader
    marker: str  # the file or folder under the root that shows the data was put there
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augmentation: CropFlip


# Augmentations as in the AugLocal paper's training code; CIFAR-10's statistics are the
# usual ones (its code writes them as (125.3, 123.0, 113.9)/255 and (63.0, 62.1, 66.7)/255).
# SVHN and STL-10 use their own per-channel statistics here, where the paper's code
# maps every channel by (x - 0.5) / 0.5; the choice only rescales the network's input.
SETS = {
    "cifar10": TorchvisionSet(
        "cifar10", _read_cifar10, "cifar-10-batches-py",
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
        augmentation=CropFlip(padding=4, pad_mode="reflect", flip=True)),
    # House numbers: a mirrored digit is no digit, so no flip.
    "svhn": TorchvisionSet(
        "svhn", _read_svhn, "train_32x32.mat",
        mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970),
        augmentation=CropFlip(padding=2, pad_mode="zero", flip=False)),
    "stl10": TorchvisionSet(
        "stl10", _read_stl10, "stl10_binary",
        mean=(0.4467, 0.4398, 0.4066), std=(0.2603, 0.2566, 0.2713),
        augmentation=CropFlip(padding=4, pad_mode="zero", flip=True)),
}


def missing(name: str, root: Path | None) -> str | None:
    root = root if root is not None else default_root()
    return None if (Path(root) / SETS[name].marker).exists() else f"{name}: no data under {root}"


def load_torchvision_set(name: str, root: Path | None, download: bool = False) -> ImageArrays:
    spec = SETS[name]
    root = root if root is not None else default_root()
    try:
        train_images, train_labels = spec.read(root, True, download)
        test_images, test_labels = spec.read(root, False, download)
    except (RuntimeError, OSError) as error:
        raise DataError(_failure(spec, root, download, error)) from error
    return ImageArrays(name=name,
                       train_images=torch.from_numpy(np.ascontiguousarray(train_images, dtype=np.uint8)),
                       train_labels=torch.from_numpy(np.asarray(train_labels, dtype=np.int64)),
                       test_images=torch.from_numpy(np.ascontiguousarray(test_images, dtype=np.uint8)),
                       test_labels=torch.from_numpy(np.asarray(test_labels, dtype=np.int64)),
                       num_classes=10, mean=spec.mean, std=spec.std)


def _failure(spec: TorchvisionSet, root: Path, download: bool, error: Exception) -> str:
    """One line: what went wrong, told apart by whether anything was there to read."""
    if download:
        return (f"{spec.name}: download into {root} failed ({error}); check the network, "
                f"or pass --data-root PATH to a folder that has the files")
    if (Path(root) / spec.marker).exists():
        return (f"{spec.name}: the files under {root} are incomplete or fail torchvision's "
                f"checksum ({error}); delete them and pass --download, or pass --data-root PATH")
    return f"{missing(spec.name, root)}; pass --download to fetch it, or --data-root PATH to point at it"


def _dataset(name: str, shape: DatasetShape, augmentation_text: str) -> DatasetSpec:
    return DatasetSpec(name=name, shape=shape, source="torchvision", augmentation=SETS[name].augmentation,
                       augmentation_text=augmentation_text, how_to_get="download (torchvision fetches it)",
                       read=lambda root, download: load_torchvision_set(name, root, download), downloadable=True,
                       missing=lambda root: missing(name, root))


DATASETS = (
    _dataset("cifar10", DatasetShape(3, 32, 10, 50_000), "reflect-pad 4, random crop, flip"),
    _dataset("svhn", DatasetShape(3, 32, 10, 73_257), "crop, padding 2, no flip"),
    _dataset("stl10", DatasetShape(3, 96, 10, 5_000), "crop 96, padding 4, flip"),
)
