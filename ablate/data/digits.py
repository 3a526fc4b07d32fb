"""scikit-learn's bundled handwritten digits: 1797 images of 8x8, ten classes. It ships
inside scikit-learn, so it is the dataset that needs no download, ever."""

from __future__ import annotations

import numpy as np
import torch

from .augment import CropFlip
from .base import DatasetShape, DatasetSpec, ImageArrays

# The set has no official test split. Ours is fixed once for everyone: the last fifth
# (359 images) of the permutation drawn with this seed. It never depends on split_seed,
# so changing the validation split can never move an image into or out of the test set.
TEST_PERMUTATION_SEED = 0
TEST_FRACTION_DENOMINATOR = 5

# Fixed constants: the pixel mean and standard deviation of the 1438 non-test images
# (after scaling 0..16 to [0, 1]); a test recomputes them.
MEAN = (0.3055,)
STD = (0.3760,)

# Digits are not mirror-symmetric (a flipped 2, 3, 4, 7 or 9 is no digit), so no flip;
# the images are only 8 pixels wide, so shifts are limited to one pixel.
AUGMENTATION = CropFlip(padding=1, pad_mode="zero", flip=False)


def load_digits() -> ImageArrays:
    from sklearn.datasets import load_digits as sklearn_digits  # a second to import: only when read

    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(TEST_PERMUTATION_SEED).permutation(len(labels)))
    num_test = len(labels) // TEST_FRACTION_DENOMINATOR
    train, test = order[:-num_test], order[-num_test:]
    return ImageArrays(name="digits", train_images=images[train], train_labels=labels[train],
                       test_images=images[test], test_labels=labels[test], num_classes=10,
                       mean=MEAN, std=STD)


DATASET = DatasetSpec(
    name="digits",
    shape=DatasetShape(channels=1, image_size=8, num_classes=10, train_size=1438),
    source="scikit-learn's bundled 8x8 digits; fixed test fifth",
    augmentation=AUGMENTATION,
    augmentation_text="crop, padding 1 (no flip: digits are not mirror-symmetric)",
    how_to_get="it ships with scikit-learn",
    read=lambda root, download: load_digits(),
)
