"""Layer × layer representation similarity (linear CKA) of two trained networks, or of one
network with itself, and its diagonal: "how like the reference is layer l".

Estimators: "minibatch" streams batches of both networks' features into MinibatchCKA
(memory flat in n; Nguyen, Raghu & Kornblith 2021); "debiased" and "biased" hold every
representation's n × n Gram matrix (exact for the n examples, memory n² per layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .cka import CKAError, MinibatchCKA, cka_matrix
from .features import Samples, extract, feature_batches, representation_names


@dataclass(frozen=True)
class Similarity:
    """CKA of representation i of A (rows) with representation j of B (columns)."""

    matrix: np.ndarray
    names_a: list[str]
    names_b: list[str]
    estimator: str  # minibatch | debiased | biased
    examples: int  # examples the estimate used
    reduction: str
    batch_size: int | None  # minibatch size (minibatch estimator only)
    samples: str  # which examples, e.g. "first 2000 test examples, un-augmented"

    def diagonal(self) -> np.ndarray:
        """CKA of layer l of A with layer l of B, for networks of the same depth."""
        if len(self.names_a) != len(self.names_b):
            raise CKAError(f"the networks have {len(self.names_a)} and {len(self.names_b)} representations; "
                           "a same-layer curve needs networks of the same depth")
        return np.diagonal(self.matrix).copy()

    def record(self) -> dict:
        """How the numbers were made, for logging beside them."""
        return {"estimator": self.estimator, "examples": self.examples, "reduction": self.reduction,
                "batch_size": self.batch_size, "samples": self.samples, "kernel": "linear", "dtype": "float64"}


def layer_similarity(net_a, net_b, samples: Samples, *, reduction: str = "flatten",
                     estimator: str = "minibatch", batch_size: int = 500,
                     device: torch.device | str = "cpu") -> Similarity:
    """Linear CKA between every representation of `net_a` and every one of `net_b` (of
    `net_a` with itself when `net_b` is None) on `samples`. The minibatch estimator uses
    ⌊n / b⌋ full batches of b = min(batch_size, n) so that every batch weighs the same."""
    if estimator not in ("minibatch", "debiased", "biased"):
        raise CKAError(f"unknown estimator {estimator!r}; choose minibatch, debiased or biased")
    names_a = representation_names(net_a)
    names_b = names_a if net_b is None else representation_names(net_b)
    if estimator == "minibatch":
        size = min(batch_size, len(samples))
        used = len(samples) // size * size
        images = samples.images[:used]
        cka = MinibatchCKA(len(names_a), None if net_b is None else len(names_b))
        batches_a = feature_batches(net_a, images, reduction, size, device)
        if net_b is None:
            for features_a in batches_a:
                cka.update(features_a)
        else:
            for features_a, features_b in zip(batches_a, feature_batches(net_b, images, reduction, size, device)):
                cka.update(features_a, features_b)
        matrix, examples, recorded_batch = cka.compute(), used, size
    else:
        features_a = extract(net_a, samples.images, reduction, batch_size, device)
        features_b = None if net_b is None else extract(net_b, samples.images, reduction, batch_size, device)
        matrix = cka_matrix(features_a, features_b, debiased=estimator == "debiased")
        examples, recorded_batch = len(samples), None
    return Similarity(matrix, names_a, names_b, estimator, examples, reduction, recorded_batch,
                      f"first {examples} {samples.split} examples, un-augmented")
