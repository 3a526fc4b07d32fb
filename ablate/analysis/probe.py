"""Linear probes: how linearly separable the classes are at every layer of a frozen network.

For each representation, a multinomial logistic regression on its reduced features (the
backbone in eval mode, no augmentation) is fitted on training examples, its inverse
regularisation C chosen by accuracy on the validation split, and scored on the test set.

Why scikit-learn's LogisticRegression (lbfgs, multinomial loss) on standardised features:
after pooling a layer has at most a few hundred features (ResNet-32: 16–64), so an exact
convex fit of 10,000 examples takes well under a second per C on a CPU, needs no learning
rate or epochs to tune, and warm starts along the C path make the whole grid cheap.
The fits run with one BLAS thread: on matrices this small, BLAS threads only add
synchronisation (and spin against torch's own threads); measured on the 2-core machine,
one ResNet-32 trial's 102 fits took 85 s with two threads and 12 s with one.
A GPU-trained probe (SGD on a linear layer) would only pay off for flattened features of
large images, where the number of features is in the tens of thousands.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .features import Samples, extract, representation_names

C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
HELD_OUT_FRACTION = 0.2  # of the probe's training examples, when the trial has no validation split


@dataclass(frozen=True)
class ProbeResult:
    names: list[str]
    test_acc: np.ndarray  # per representation, of the C chosen on validation
    val_acc: np.ndarray
    train_acc: np.ndarray
    chosen_c: np.ndarray
    reduction: str
    train_examples: int
    val_examples: int
    test_examples: int
    selection: str  # where C was chosen: "validation split" or "held-out training examples"

    def record(self) -> dict:
        return {"reduction": self.reduction, "train_examples": self.train_examples,
                "val_examples": self.val_examples, "test_examples": self.test_examples,
                "c_grid": list(C_GRID), "selection": self.selection,
                "classifier": "sklearn LogisticRegression(lbfgs, multinomial) on standardised features"}


def probe_layers(net, train: Samples, val: Samples, test: Samples, *, reduction: str = "gap",
                 batch_size: int = 500, device: torch.device | str = "cpu") -> ProbeResult:
    """Fit and score one linear probe per representation of `net`."""
    selection = "validation split"
    if len(val) == 0:
        cut = int(len(train) * (1 - HELD_OUT_FRACTION))
        train, val = (Samples(train.images[:cut], train.labels[:cut], "train"),
                      Samples(train.images[cut:], train.labels[cut:], "train"))
        selection = "held-out training examples"
    train_f, val_f, test_f = (extract(net, part.images, reduction, batch_size, device) for part in (train, val, test))
    with threadpool_limits(limits=1, user_api="blas"):
        rows = [_probe_one(train_f[i].numpy(), train.labels.numpy(), val_f[i].numpy(), val.labels.numpy(),
                           test_f[i].numpy(), test.labels.numpy())
                for i in range(len(train_f))]
    test_acc, val_acc, train_acc, chosen_c = (np.array(column) for column in zip(*rows))
    return ProbeResult(representation_names(net), test_acc, val_acc, train_acc, chosen_c, reduction,
                       len(train), len(val), len(test), selection)


def _probe_one(x_train, y_train, x_val, y_val, x_test, y_test) -> tuple[float, float, float, float]:
    """(test, validation, training accuracy, C) of the C with the best validation accuracy
    (the smallest such C, i.e. the strongest regularisation, on ties)."""
    scaler = StandardScaler().fit(x_train)
    x_train, x_val, x_test = (scaler.transform(x) for x in (x_train, x_val, x_test))
    classifier = LogisticRegression(max_iter=300, warm_start=True)
    best = None
    for c in C_GRID:
        classifier.set_params(C=c)
        with warnings.catch_warnings():
            # a probe that has not fully converged after 300 lbfgs steps is still a probe
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier.fit(x_train, y_train)
        val_acc = classifier.score(x_val, y_val)
        if best is None or val_acc > best[1]:
            best = (classifier.score(x_test, y_test), val_acc, classifier.score(x_train, y_train), c)
    return best
