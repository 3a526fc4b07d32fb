"""The validation split: held out from the training set so that model selection never
looks at the test set."""

from __future__ import annotations

import numbers

import numpy as np

from .base import DataError


def validation_count(num_train: int, val_size: float | int) -> int:
    """How many of `num_train` examples to hold out: a number in (0, 1) is a fraction, a
    whole number >= 1 a count (5000 and 5000.0 alike: settings arrive as floats), 0 none."""
    if isinstance(val_size, bool) or not isinstance(val_size, numbers.Real):
        raise DataError(f"val_size must be a fraction in (0, 1), a count >= 1, or 0; got {val_size!r}")
    if val_size == 0:
        return 0
    if 0 < val_size < 1:
        count = max(1, round(val_size * num_train))
    elif val_size >= 1 and float(val_size).is_integer():
        count = int(val_size)
    else:
        raise DataError(f"val_size {val_size!r}: give a fraction in (0, 1) or a whole count >= 1")
    if not 1 <= count < num_train:
        raise DataError(f"val_size {val_size!r} leaves no training examples out of {num_train}")
    return count


def holdout_split(num_train: int, val_size: float | int, seed: int,
                  train_subset: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) into a training set of `num_train` examples.

    A permutation seeded by `seed` alone: the validation part is its first
    validation_count entries, the training part the rest in permuted order, so that
    `train_subset` = K (its first K) is a random subset, the same for the same seed.
    """
    count = validation_count(num_train, val_size)
    order = np.random.default_rng(seed).permutation(num_train)
    val, train = order[:count], order[count:]
    if train_subset is not None:
        if isinstance(train_subset, bool) or not isinstance(train_subset, numbers.Integral) or train_subset < 1:
            raise DataError(f"train_subset must be a count >= 1, got {train_subset!r}")
        if train_subset > len(train):
            raise DataError(f"train_subset {train_subset} exceeds the {len(train)} training examples "
                            f"left after holding out {count} for validation")
        train = train[:train_subset]
    return train, val
