"""Images in ImageNet's folder layout: root/train/<class>/*.JPEG and root/val/<class>/*.JPEG
(the validation images sorted into class folders). Decoded and augmented per image by
DataLoader workers and streamed; the 'val' folder serves as the test set, and the
validation split is held out from 'train'."""

from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset

from .base import DataBundle, DataError, DataInfo, DatasetShape, DatasetSpec, drop_last_for_training
from .split import holdout_split
from .stream_loader import StreamLoader

if TYPE_CHECKING:  # torchvision is imported where it is used: see ablate/data/__init__.py
    import torchvision
    from torchvision.transforms import v2

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
DEFAULT_IMAGE_SIZE = 224
RESIZE_RATIO = 256 / 224  # evaluation: resize the short side to 256, centre-crop 224


def train_transform(image_size: int) -> v2.Compose:
    from torchvision.transforms import v2

    return v2.Compose([
        v2.ToImage(),
        v2.RandomResizedCrop(image_size, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(MEAN, STD),
    ])


def eval_transform(image_size: int) -> v2.Compose:
    from torchvision.transforms import v2

    return v2.Compose([
        v2.ToImage(),
        v2.Resize(round(image_size * RESIZE_RATIO), antialias=True),
        v2.CenterCrop(image_size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(MEAN, STD),
    ])


class TransformedSubset(Dataset):
    """The images of `base` at `indices`, each passed through `transform`: one scan of
    the train folder serves both the training part and the held-out validation part,
    each with its own transform."""

    def __init__(self, base: torchvision.datasets.ImageFolder, indices, transform):
        self.base = base
        self.indices = [int(i) for i in indices]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, label = self.base[self.indices[i]]
        return self.transform(image), label


LAYOUT = "train/<class>/*.JPEG and val/<class>/*.JPEG"


def missing(root: Path | None) -> str | None:
    if root is None:
        return "imagefolder: no data root given"
    absent = next((Path(root) / part for part in ("train", "val") if not (Path(root) / part).is_dir()), None)
    return None if absent is None else f"imagefolder: no folder {absent}"


def open_folders(root: Path | None) -> tuple[torchvision.datasets.ImageFolder, torchvision.datasets.ImageFolder]:
    """The 'train' and 'val' folders under `root`, both with the same classes."""
    import torchvision

    problem = missing(root)
    if problem is not None:
        raise DataError(f"{problem}; pass --data-root PATH to a folder with {LAYOUT}")
    folders = {}
    for part in ("train", "val"):
        folder = Path(root) / part
        try:
            folders[part] = torchvision.datasets.ImageFolder(str(folder))
        except FileNotFoundError as error:
            raise DataError(f"imagefolder: {folder} has no usable images ({error}); expected {LAYOUT}") from error
    if folders["train"].classes != folders["val"].classes:
        differing = sorted(set(folders["train"].classes) ^ set(folders["val"].classes))
        raise DataError(f"imagefolder: {root}/train and {root}/val have different classes "
                        f"(in one only: {', '.join(differing[:5])}{', ...' if len(differing) > 5 else ''})")
    return folders["train"], folders["val"]


def load_imagefolder(root: Path | None, *, val_size: float | int, split_seed: int, train_subset: int | None,
                     image_size: int | None, augment: bool, batch_size: int, eval_batch_size: int,
                     num_workers: int, device: str | torch.device, seed: int) -> DataBundle:
    size = image_size or DEFAULT_IMAGE_SIZE
    train_folder, test_folder = open_folders(root)
    train_index, val_index = holdout_split(len(train_folder), val_size, split_seed, train_subset)
    test_folder.transform = eval_transform(size)
    train_set = TransformedSubset(train_folder, train_index,
                                  train_transform(size) if augment else eval_transform(size))
    streams = dict(num_workers=num_workers, device=device)
    val = (StreamLoader(TransformedSubset(train_folder, val_index, eval_transform(size)),
                        batch_size=eval_batch_size, **streams) if len(val_index) else None)
    info = DataInfo(name="imagefolder", num_classes=len(train_folder.classes), channels=3, image_size=size,
                    mean=MEAN, std=STD, train_size=len(train_set), val_size=len(val_index),
                    test_size=len(test_folder))
    train = StreamLoader(train_set, batch_size=batch_size, shuffle=True,
                         drop_last=drop_last_for_training(len(train_set), batch_size), seed=seed, **streams)
    test = StreamLoader(test_folder, batch_size=eval_batch_size, **streams)
    return DataBundle(info=info, train=train, val=val, test=test)


# The class count is the folder's; a plan does not depend on it, so validation assumes ImageNet's.
DATASET = DatasetSpec(
    name="imagefolder",
    shape=DatasetShape(channels=3, image_size=DEFAULT_IMAGE_SIZE, num_classes=1000, train_size=None),
    source="the data root with train/ and val/ (ImageNet layout)",
    augmentation=None,
    augmentation_text="random-resized crop 224 + flip; val: resize 256, centre crop",
    how_to_get="set data_root (--data-root) to a folder with train/<class>/ and val/<class>/",
    stream=load_imagefolder,
    needs_root=True,
    missing=missing,
)
