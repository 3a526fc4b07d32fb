"""Centered kernel alignment (CKA) between representations, full-batch and streaming.

Notation (Kornblith et al. 2019; Song et al. 2012): X (n × p) and Y (n × q) hold the
features of the same n examples, one row each; K and L are their n × n Gram matrices and
H = I_n − (1/n) 1 1ᵀ is the centering matrix.

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L))

Biased HSIC (Gretton et al. 2005):

    HSIC_0(K, L) = tr(K H L H) / (n − 1)²

Unbiased HSIC (Song et al. 2012), with K̃, L̃ the Gram matrices with zeroed diagonals:

    HSIC_1(K, L) = 1 / (n (n − 3)) · [ tr(K̃ L̃) + (1ᵀ K̃ 1)(1ᵀ L̃ 1) / ((n − 1)(n − 2))
                                       − 2 / (n − 2) · 1ᵀ K̃ L̃ 1 ]

It is computed as ⟨K̂, L̂⟩_F / (n (n − 3)) with K̂ the U-centered Gram matrix (zero
diagonal, and K̂_ij = K̃_ij − K̃_i· / (n − 2) − K̃_·j / (n − 2) + K̃_·· / ((n − 1)(n − 2))
off it; a dot is a sum over that index). "Debiased" CKA uses HSIC_1 in all three places.

Minibatch CKA (Nguyen, Raghu & Kornblith 2021) averages HSIC_1 over k minibatches of
linear Gram matrices, so memory does not grow with n:

    CKA_minibatch = (1/k Σ_i HSIC_1(K_i, L_i))
                    / sqrt((1/k Σ_i HSIC_1(K_i, K_i)) · (1/k Σ_i HSIC_1(L_i, L_i)))

Undefined CKA: when HSIC(K, K) · HSIC(L, L) ≤ 0 (a constant layer; for HSIC_1 also a
layer whose U-centered Gram matrix vanishes, e.g. one that is zero but at one example;
or roundoff) CKA has no value. Every function here then returns NaN and emits a
`CKAUndefinedWarning`, so that one degenerate layer does not hide the rest of a
layer-by-layer matrix and is never silent.

Inputs are numpy arrays or torch tensors of shape (n, features…); trailing dimensions
are flattened (a conv layer's (n, C, H, W) becomes (n, C·H·W)). Everything is computed
in float64 on the input tensor's device.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import UserInputError

Features = np.ndarray | torch.Tensor


class CKAError(UserInputError):
    """Inputs that CKA cannot be computed from (shapes, too few examples, bad settings)."""


class CKAUndefinedWarning(RuntimeWarning):
    """HSIC(K, K) · HSIC(L, L) ≤ 0, so CKA is undefined and NaN is returned."""


def linear_cka(x: Features, y: Features, debiased: bool = False) -> float:
    """CKA with linear kernels K = X Xᵀ, L = Y Yᵀ; HSIC_1 when `debiased`, else HSIC_0."""
    x, y = _paired_matrices(x, y, debiased)
    return _cka_from_grams(x @ x.T, y @ y.T, debiased)


def rbf_cka(x: Features, y: Features, threshold: float = 1.0, debiased: bool = False) -> float:
    """CKA with Gaussian kernels K_ij = exp(−‖x_i − x_j‖² / (2σ²)), one σ per representation:
    σ² = threshold² · median_{i,j} ‖x_i − x_j‖² (median over all n² ordered pairs, the
    diagonal included, as in Kornblith et al.'s reference notebook), i.e. σ = threshold ·
    median distance."""
    if not threshold > 0:
        raise CKAError(f"rbf_cka threshold must be positive, got {threshold}")
    x, y = _paired_matrices(x, y, debiased)
    return _cka_from_grams(_gram_rbf(x, threshold), _gram_rbf(y, threshold), debiased)


def feature_space_linear_cka(x: Features, y: Features, debiased: bool = False) -> float:
    """Linear CKA from p × q feature cross-products instead of n × n Gram matrices (cheaper
    when n ≫ p, q). With X, Y column-centered, d^X_i = ‖x_i‖², d^Y_i = ‖y_i‖²:

        n (n − 3) · HSIC_1(K, L) = ‖Yᵀ X‖²_F − n / (n − 2) · Σ_i d^X_i d^Y_i
                                   + ‖X‖²_F ‖Y‖²_F / ((n − 1)(n − 2))

    and (n − 1)² · HSIC_0(K, L) = ‖Yᵀ X‖²_F. Equals `linear_cka` up to roundoff."""
    x, y = _paired_matrices(x, y, debiased)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)

    def scaled_hsic(a: torch.Tensor, b: torch.Tensor) -> float:
        cross = float(torch.linalg.matrix_norm(b.T @ a) ** 2)
        if not debiased:
            return cross
        n = a.shape[0]
        row_products = float((a.square().sum(1) * b.square().sum(1)).sum())
        norms = float(a.square().sum() * b.square().sum())
        return cross - n / (n - 2) * row_products + norms / ((n - 1) * (n - 2))

    return _cka_from_hsic(scaled_hsic(x, y), scaled_hsic(x, x), scaled_hsic(y, y))


def cka_matrix(features_a: Sequence[Features], features_b: Sequence[Features] | None = None,
               debiased: bool = False) -> np.ndarray:
    """Full-batch linear CKA between every representation of A and every one of B (of A
    itself when None): each centered n × n Gram matrix is computed once and all of them
    are held at the same time, so memory grows as n² times the number of representations
    (MinibatchCKA is the streaming alternative). NaN, with a warning, where undefined."""
    grams_a = _centered_grams(features_a, "features_a", debiased)
    grams_b = grams_a if features_b is None else _centered_grams(features_b, "features_b", debiased)
    if grams_b.shape[1] != grams_a.shape[1]:
        raise CKAError("features_a and features_b must describe the same examples")
    cross = (grams_a @ grams_b.T).cpu().numpy()
    denominator = np.outer(grams_a.square().sum(1).cpu().numpy(), grams_b.square().sum(1).cpu().numpy())
    undefined = ~(denominator > 0)
    if undefined.any():
        warnings.warn(f"{int(undefined.sum())} representation pair(s) have HSIC(K,K)·HSIC(L,L) ≤ 0 "
                      "(a constant or degenerate representation); their CKA is NaN",
                      CKAUndefinedWarning, stacklevel=2)
    return cross / np.sqrt(np.where(undefined, np.nan, denominator))


def _centered_grams(features: Sequence[Features], name: str, debiased: bool) -> torch.Tensor:
    """(representations, n²): each representation's centered Gram matrix, flattened."""
    matrices = [_as_matrix(f, name) for f in features]
    if not matrices:
        raise CKAError(f"{name} holds no representations")
    n = matrices[0].shape[0]
    if any(m.shape[0] != n for m in matrices):
        raise CKAError(f"the representations in {name} hold different numbers of examples")
    _require_examples(n, debiased)
    return torch.stack([_center_gram(m @ m.T, debiased).flatten() for m in matrices])


class MinibatchCKA:
    """Streaming debiased linear CKA between every layer of network A and every layer of
    network B (or of A itself when `num_layers_b` is None), after Nguyen, Raghu & Kornblith
    2021: each `update` adds one minibatch's HSIC_1 of every layer pair and of every layer
    with itself, and `compute` divides the averages as in the module docstring. Memory is
    O(num_layers_a · num_layers_b) between updates; one update holds one b × b U-centered
    Gram matrix per layer. Every minibatch weighs the same, so use equal batch sizes
    (e.g. drop_last=True)."""

    def __init__(self, num_layers_a: int, num_layers_b: int | None = None):
        for name, count in (("num_layers_a", num_layers_a), ("num_layers_b", num_layers_b)):
            if count is not None and count < 1:
                raise CKAError(f"{name} must be at least 1, got {count}")
        self.num_layers_a = num_layers_a
        self.num_layers_b = num_layers_b
        self.num_batches = 0
        rows, cols = num_layers_a, num_layers_b or num_layers_a
        self._cross = np.zeros((rows, cols))
        self._self_a = np.zeros(rows)
        self._self_b = np.zeros(cols)

    def update(self, features_a: Sequence[Features], features_b: Sequence[Features] | None = None):
        """Add one minibatch: `features_a[i]` is layer i's (b, d_i) features of network A,
        `features_b[j]` layer j's of network B on the same b examples (None when comparing
        A with itself)."""
        if (features_b is None) != (self.num_layers_b is None):
            expected = "no features_b" if self.num_layers_b is None else "features_b"
            raise CKAError(f"MinibatchCKA({self.num_layers_a}, {self.num_layers_b}) expects "
                           f"{expected} in update()")
        grams_a, n = self._u_centered_grams(features_a, self.num_layers_a, "features_a")
        if features_b is None:
            grams_b = grams_a
        else:
            grams_b, n_b = self._u_centered_grams(features_b, self.num_layers_b, "features_b")
            if n_b != n:
                raise CKAError(f"features_a hold {n} examples but features_b {n_b}")
            grams_b = grams_b.to(grams_a.device)
        scale = 1.0 / (n * (n - 3))
        self._cross += (grams_a @ grams_b.T).cpu().numpy() * scale
        self._self_a += grams_a.square().sum(1).cpu().numpy() * scale
        self._self_b += grams_b.square().sum(1).cpu().numpy() * scale
        self.num_batches += 1

    def compute(self) -> np.ndarray:
        """The (num_layers_a, num_layers_b) float64 matrix of minibatch CKA; NaN (with a
        `CKAUndefinedWarning`) where a layer's averaged HSIC_1 with itself is ≤ 0."""
        if self.num_batches == 0:
            raise CKAError("MinibatchCKA.compute() needs at least one update() first")
        denominator = np.outer(self._self_a, self._self_b)
        undefined = ~(denominator > 0)
        if undefined.any():
            warnings.warn(f"{int(undefined.sum())} layer pair(s) have HSIC_1(K,K)·HSIC_1(L,L) "
                          f"≤ 0 (a constant or degenerate layer); their CKA is NaN",
                          CKAUndefinedWarning, stacklevel=2)
        return self._cross / np.sqrt(np.where(undefined, np.nan, denominator))

    @staticmethod
    def _u_centered_grams(features: Sequence[Features], count: int,
                          name: str) -> tuple[torch.Tensor, int]:
        """(layers, b²) flattened U-centered Gram matrices, and b."""
        if len(features) != count:
            raise CKAError(f"{name} has {len(features)} layers, expected {count}")
        matrices = [_as_matrix(f, name) for f in features]
        n = matrices[0].shape[0]
        if any(m.shape[0] != n for m in matrices):
            raise CKAError(f"the layers of {name} hold different numbers of examples")
        _require_examples(n, debiased=True)
        device = matrices[0].device
        grams = [_center_gram(m.to(device) @ m.to(device).T, unbiased=True) for m in matrices]
        return torch.stack([g.flatten() for g in grams]), n


def _as_matrix(features: Features, name: str) -> torch.Tensor:
    if isinstance(features, torch.Tensor):
        tensor = features.detach().to(torch.float64)
    else:
        tensor = torch.from_numpy(np.asarray(features, dtype=np.float64))
    if tensor.ndim < 2:
        raise CKAError(f"{name} must have shape (n, features...), got {tuple(tensor.shape)}")
    return tensor.reshape(tensor.shape[0], -1)


def _paired_matrices(x: Features, y: Features, debiased: bool) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _as_matrix(x, "x"), _as_matrix(y, "y")
    if x.shape[0] != y.shape[0]:
        raise CKAError(f"x and y must describe the same examples: {x.shape[0]} rows vs "
                       f"{y.shape[0]}")
    _require_examples(x.shape[0], debiased)
    return x, y.to(x.device)


def _require_examples(n: int, debiased: bool):
    least = 4 if debiased else 2
    if n < least:
        estimator = "the unbiased HSIC estimator (n(n−3) > 0)" if debiased else "CKA"
        raise CKAError(f"{estimator} needs at least {least} examples, got {n}")


def _gram_rbf(x: torch.Tensor, threshold: float) -> torch.Tensor:
    sq_norms = x.square().sum(1)
    sq_distances = (sq_norms[:, None] + sq_norms[None, :] - 2 * (x @ x.T)).clamp_min(0)
    median = _median(sq_distances.flatten())
    if median <= 0:
        raise CKAError("rbf_cka is undefined when the median pairwise distance is 0 "
                       "(most examples coincide); use linear_cka or more varied examples")
    return torch.exp(-sq_distances / (2 * threshold**2 * median))


def _median(values: torch.Tensor) -> float:
    """The median averaging the two middle values, like numpy's (torch's takes the lower)."""
    ordered = values.sort().values
    middle = (ordered.numel() - 1) // 2
    return float(ordered[middle : ordered.numel() - middle].mean())


def _center_gram(gram: torch.Tensor, unbiased: bool) -> torch.Tensor:
    """H K H, or the U-centered K̂ of the module docstring when `unbiased`."""
    if not unbiased:
        return gram - gram.mean(0, keepdim=True) - gram.mean(1, keepdim=True) + gram.mean()
    n = gram.shape[0]
    off_diagonal = gram - torch.diag(torch.diagonal(gram))
    centered = (off_diagonal
                - off_diagonal.sum(1, keepdim=True) / (n - 2)
                - off_diagonal.sum(0, keepdim=True) / (n - 2)
                + off_diagonal.sum() / ((n - 1) * (n - 2)))
    return centered - torch.diag(torch.diagonal(centered))


def _cka_from_grams(gram_x: torch.Tensor, gram_y: torch.Tensor, debiased: bool) -> float:
    k, el = _center_gram(gram_x, debiased), _center_gram(gram_y, debiased)
    # The estimators' normalising constants are common to the three HSICs and cancel.
    return _cka_from_hsic(float((k * el).sum()), float(k.square().sum()),
                          float(el.square().sum()))


def _cka_from_hsic(hsic_xy: float, hsic_xx: float, hsic_yy: float) -> float:
    denominator = hsic_xx * hsic_yy
    if not denominator > 0:
        warnings.warn(f"CKA is undefined: HSIC(K,K)·HSIC(L,L) = {denominator:.3g} ≤ 0 "
                      f"(a constant or degenerate representation); returning NaN",
                      CKAUndefinedWarning, stacklevel=3)
        return math.nan
    return hsic_xy / math.sqrt(denominator)
