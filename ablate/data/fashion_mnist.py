"""Fashion-MNIST from its four IDX files: 60000 training and 10000 test images of 28x28,
ten classes of clothing.

Where the files are looked for, in order: the data root, then the folder that Debian's
and Ubuntu's `dataset-fashion-mnist` package installs (flat, gzipped files); under each,
also the subfolders `fashion-mnist/` and torchvision's `FashionMNIST/raw/`. Each file may
be gzipped (`.gz`) or plain.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .augment import CropFlip
from .base import DataError, DatasetShape, DatasetSpec, ImageArrays, default_root
from .idx import read_idx

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
SUBFOLDERS = (".", "fashion-mnist", "FashionMNIST/raw")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# Fixed constants: the pixel mean and standard deviation of the 60000 training images.
MEAN = (0.2860,)
STD = (0.3530,)

# The common Fashion-MNIST recipe: shifts of up to two pixels and left-right flips (a
# mirrored shirt or shoe is still a shirt or a shoe, unlike a mirrored digit).
AUGMENTATION = CropFlip(padding=2, pad_mode="zero", flip=True)


def search_dirs(root: Path | None) -> list[Path]:
    """Every folder the files are looked for in, in the order they are tried: under an
    explicit root only there; without one, the default root, then Debian's folder."""
    bases = (Path(root),) if root is not None else (default_root(), SYSTEM_DIR)
    dirs = [base / sub for base in bases for sub in SUBFOLDERS]
    return [d for i, d in enumerate(dirs) if d not in dirs[:i]]


def find_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in `folder` (each gzipped or plain), or None if any is missing."""
    found = {}
    for key, stem in FILES.items():
        candidates = [folder / f"{stem}.gz", folder / stem]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            return None
        found[key] = path
    return found


def locate(root: Path | None) -> dict[str, Path] | None:
    return next(filter(None, (find_files(d) for d in search_dirs(root))), None)


def missing(root: Path | None) -> str | None:
    if locate(root) is not None:
        return None
    where = root if root is not None else f"{default_root()} or {SYSTEM_DIR}"
    return f"fashion-mnist: no IDX files (train-images-idx3-ubyte[.gz] etc.) in {where}"


def load_fashion_mnist(root: Path | None, download: bool = False) -> ImageArrays:
    files = locate(root)
    if files is None and download:
        _download(root if root is not None else default_root())
        files = locate(root)
    if files is None:
        raise DataError(f"{missing(root)}; run 'apt-get install dataset-fashion-mnist', pass --download, "
                        f"or pass --data-root PATH to the folder that has them")
    arrays = {key: read_idx(path, 3 if key.endswith("images") else 1) for key, path in files.items()}
    for part in ("train", "test"):
        num_images, num_labels = len(arrays[f"{part}_images"]), len(arrays[f"{part}_labels"])
        if num_images != num_labels:
            raise DataError(f"fashion-mnist: {files[part + '_images'].parent} holds {num_images} {part} "
                            f"images but {num_labels} labels")
    tensors = {key: torch.from_numpy(a.copy()) for key, a in arrays.items()}
    return ImageArrays(name="fashion-mnist",
                       train_images=tensors["train_images"].unsqueeze(1),
                       train_labels=tensors["train_labels"].long(),
                       test_images=tensors["test_images"].unsqueeze(1),
                       test_labels=tensors["test_labels"].long(),
                       num_classes=10, mean=MEAN, std=STD)


def _download(root: Path) -> None:
    """Fetch the files with torchvision, which leaves them in root/FashionMNIST/raw."""
    import torchvision  # here, not at the top: see ablate/data/__init__.py

    try:
        torchvision.datasets.FashionMNIST(str(root), train=True, download=True)
    except (OSError, RuntimeError) as error:
        raise DataError(f"fashion-mnist: download into {root} failed ({error}); run "
                        f"'apt-get install dataset-fashion-mnist' or pass --data-root PATH") from error


DATASET = DatasetSpec(
    name="fashion-mnist",
    shape=DatasetShape(channels=1, image_size=28, num_classes=10, train_size=60_000),
    source=f"IDX files under the data root, else Debian's {SYSTEM_DIR}",
    augmentation=AUGMENTATION,
    augmentation_text="crop, padding 2, flip",
    how_to_get="apt-get install dataset-fashion-mnist, or download",
    read=load_fashion_mnist,
    downloadable=True,
    missing=missing,
)
