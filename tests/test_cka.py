"""CKA: the defining identities and invariances, the debiased estimator on independent data,
feature-space vs example-space forms, streaming minibatch CKA, degenerate layers, and a
check against HSIC written straight from its definitions (Gretton et al. 2005's centering
matrix; the U-statistic of Song et al. 2012 as explicit sums over distinct indices)."""

import itertools
import math
import warnings

import numpy as np
import pytest
import torch

from ablate.analysis.cka import (
    CKAError,
    CKAUndefinedWarning,
    MinibatchCKA,
    feature_space_linear_cka,
    linear_cka,
    rbf_cka,
)

ALL_CKAS = {
    "linear": linear_cka,
    "linear-debiased": lambda x, y: linear_cka(x, y, debiased=True),
    "rbf": rbf_cka,
    "rbf-debiased": lambda x, y: rbf_cka(x, y, debiased=True),
    "rbf-threshold-0.5": lambda x, y: rbf_cka(x, y, threshold=0.5),
    "feature-space": feature_space_linear_cka,
    "feature-space-debiased": lambda x, y: feature_space_linear_cka(x, y, debiased=True),
}


def random(n, d, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def correlated(n, seed=0):
    """Y is a noisy non-linear function of X, so that CKA(X, Y) is well inside (0, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 12))
    y = np.tanh(x @ rng.standard_normal((12, 16))) + 0.5 * rng.standard_normal((n, 16))
    return x, y


@pytest.mark.parametrize("cka", ALL_CKAS.values(), ids=ALL_CKAS.keys())
def test_cka_of_a_representation_with_itself_is_one(cka):
    x = random(40, 7)
    assert cka(x, x) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("cka", ALL_CKAS.values(), ids=ALL_CKAS.keys())
def test_cka_is_symmetric(cka):
    x, y = correlated(40)
    assert cka(x, y) == pytest.approx(cka(y, x), abs=1e-12)
    assert 0.1 < cka(x, y) < 0.99


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_is_invariant_to_orthogonal_maps_isotropic_scaling_and_translation(debiased):
    x, y = correlated(60)
    rotation, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((16, 16)))
    reference = linear_cka(x, y, debiased)
    assert linear_cka(x, y @ rotation, debiased) == pytest.approx(reference, abs=1e-12)
    assert linear_cka(x, 3.7 * y, debiased) == pytest.approx(reference, abs=1e-12)
    assert linear_cka(x + 5.0, y - np.arange(16), debiased) == pytest.approx(reference, abs=1e-12)


def test_linear_cka_changes_under_a_general_invertible_linear_map():
    x, y = correlated(60)
    stretch = np.diag(np.linspace(0.1, 10.0, 16))  # invertible, but neither orthogonal nor isotropic
    assert abs(linear_cka(x, y @ stretch) - linear_cka(x, y)) > 1e-2


@pytest.mark.parametrize("debiased", [False, True])
def test_feature_space_and_example_space_linear_cka_agree(debiased):
    x, y = correlated(50)
    assert feature_space_linear_cka(x, y, debiased) == pytest.approx(
        linear_cka(x, y, debiased), abs=1e-10)


def test_debiased_cka_of_independent_data_is_near_zero_where_biased_cka_is_not():
    # With more features than examples the biased estimator sees spurious alignment.
    x, y = random(500, 1000, seed=1), random(500, 1000, seed=2)
    assert abs(linear_cka(x, y, debiased=True)) < 0.05
    assert linear_cka(x, y) > 0.2


def direct_biased_hsic(k, el):
    """Gretton et al. 2005: tr(K H L H) / (n − 1)², H = I − 11ᵀ/n."""
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ el @ h) / (n - 1) ** 2


def direct_unbiased_hsic(k, el):
    """The HSIC U-statistic over distinct indices (Song et al. 2012):
    (n)₂⁻¹ Σ k_ij l_ij + (n)₄⁻¹ Σ k_ij l_qr − 2 (n)₃⁻¹ Σ k_ij l_iq, with (n)_m = n!/(n − m)!."""
    n = len(k)
    pairs = sum(k[i, j] * el[i, j] for i, j in itertools.permutations(range(n), 2))
    triples = sum(k[i, j] * el[i, q] for i, j, q in itertools.permutations(range(n), 3))
    quadruples = sum(k[i, j] * el[q, r] for i, j, q, r in itertools.permutations(range(n), 4))
    return (pairs / math.perm(n, 2) + quadruples / math.perm(n, 4)
            - 2 * triples / math.perm(n, 3))


def song_unbiased_hsic(k, el):
    """Song et al. 2012's closed form, K̃ and L̃ with zeroed diagonals:
    [tr(K̃L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3))."""
    n = len(k)
    k, el = k - np.diag(np.diag(k)), el - np.diag(np.diag(el))
    ones = np.ones(n)
    return (np.trace(k @ el) + k.sum() * el.sum() / ((n - 1) * (n - 2))
            - 2 / (n - 2) * ones @ k @ el @ ones) / (n * (n - 3))


def direct_cka(hsic, k, el):
    return hsic(k, el) / math.sqrt(hsic(k, k) * hsic(el, el))


def direct_rbf_gram(x, threshold):
    sq_distances = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.exp(-sq_distances / (2 * threshold**2 * np.median(sq_distances)))


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_matches_hsic_written_from_its_definitions(debiased):
    x, y = correlated(8, seed=3)
    hsic = direct_unbiased_hsic if debiased else direct_biased_hsic
    assert linear_cka(x, y, debiased) == pytest.approx(
        direct_cka(hsic, x @ x.T, y @ y.T), abs=1e-12)
    assert rbf_cka(x, y, 0.8, debiased) == pytest.approx(
        direct_cka(hsic, direct_rbf_gram(x, 0.8), direct_rbf_gram(y, 0.8)), abs=1e-12)


def test_songs_closed_form_is_the_hsic_u_statistic():
    x, y = correlated(8, seed=4)
    assert song_unbiased_hsic(x @ x.T, y @ y.T) == pytest.approx(
        direct_unbiased_hsic(x @ x.T, y @ y.T), rel=1e-12)


def test_minibatch_cka_averages_each_batchs_unbiased_hsic_with_equal_weight():
    x, y = correlated(60)
    batches = [slice(0, 10), slice(10, 60)]  # unequal sizes: each HSIC_1 keeps its own 1/(n(n−3))
    streaming = MinibatchCKA(1, 1)
    for batch in batches:
        streaming.update([x[batch]], [y[batch]])

    def mean_hsic(a, b):
        return np.mean([song_unbiased_hsic(a[s] @ a[s].T, b[s] @ b[s].T) for s in batches])

    expected = mean_hsic(x, y) / math.sqrt(mean_hsic(x, x) * mean_hsic(y, y))
    assert streaming.compute()[0, 0] == pytest.approx(expected, abs=1e-12)


def test_minibatch_cka_with_one_batch_equals_full_batch_debiased_linear_cka():
    x, y = correlated(64)
    layers_a, layers_b = [x, x[:, :5]], [y, np.tanh(y), y[:, :3]]
    streaming = MinibatchCKA(2, 3)
    streaming.update([torch.from_numpy(f) for f in layers_a], layers_b)
    matrix = streaming.compute()
    assert matrix.shape == (2, 3) and matrix.dtype == np.float64
    expected = [[linear_cka(a, b, debiased=True) for b in layers_b] for a in layers_a]
    np.testing.assert_allclose(matrix, expected, rtol=0, atol=1e-10)


def test_minibatch_cka_over_many_batches_approximates_full_batch_debiased_cka():
    x, y = correlated(1024)
    streaming = MinibatchCKA(1, 1)
    for start in range(0, 1024, 128):
        streaming.update([x[start:start + 128]], [y[start:start + 128]])
    assert streaming.num_batches == 8
    assert streaming.compute()[0, 0] == pytest.approx(linear_cka(x, y, debiased=True), abs=0.02)


def test_minibatch_cka_within_one_network_is_symmetric_with_a_unit_diagonal():
    x, y = correlated(96)
    streaming = MinibatchCKA(3)
    for batch in np.split(np.arange(96), 4):
        streaming.update([x[batch], y[batch], np.tanh(x[batch])])
    matrix = streaming.compute()
    np.testing.assert_allclose(matrix, matrix.T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.diag(matrix), 1.0, rtol=0, atol=1e-12)
    assert np.all(matrix[~np.eye(3, dtype=bool)] < 0.99)


def test_minibatch_cka_flattens_conv_features_and_checks_its_inputs():
    images = torch.randn(16, 3, 4, 4)
    streaming = MinibatchCKA(1)
    streaming.update([images])
    assert streaming.compute()[0, 0] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(CKAError, match="compute"):
        MinibatchCKA(1).compute()
    with pytest.raises(CKAError, match="layers"):
        streaming.update([images, images])
    with pytest.raises(CKAError, match="no features_b"):
        streaming.update([images], [images])
    with pytest.raises(CKAError, match="features_b"):
        MinibatchCKA(1, 1).update([images])
    with pytest.raises(CKAError, match="at least 4"):
        streaming.update([images[:3]])


def test_a_constant_representation_gives_nan_with_a_warning():
    x, constant = random(20, 5), np.ones((20, 5))
    for cka in (linear_cka, feature_space_linear_cka):
        for debiased in (False, True):
            with pytest.warns(CKAUndefinedWarning):
                assert math.isnan(cka(x, constant, debiased))


def test_a_vanishing_unbiased_hsic_gives_nan_with_a_warning_where_biased_cka_is_defined():
    # Zero but at one example: the Gram matrix is zero off its diagonal, so HSIC_1(L, L) = 0.
    x, spike = random(20, 5), np.zeros((20, 5))
    spike[0] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert 0 < linear_cka(x, spike) < 1
    with pytest.warns(CKAUndefinedWarning):
        assert math.isnan(linear_cka(x, spike, debiased=True))


def test_minibatch_cka_marks_only_the_degenerate_layers_pairs_nan():
    x, y = correlated(32)
    streaming = MinibatchCKA(2, 1)
    streaming.update([x, np.ones_like(x)], [y])
    with pytest.warns(CKAUndefinedWarning, match="1 layer pair"):
        matrix = streaming.compute()
    assert np.isfinite(matrix[0, 0]) and math.isnan(matrix[1, 0])


def test_torch_tensors_and_numpy_arrays_give_the_same_cka():
    x, y = correlated(30)
    for cka in ALL_CKAS.values():
        assert cka(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(cka(x, y), abs=1e-12)
        assert cka(torch.from_numpy(x), y) == pytest.approx(cka(x, y), abs=1e-12)


def test_float32_inputs_are_computed_in_float64():
    # Far from the origin, float32 arithmetic would lose the centred signal to roundoff.
    x, y = correlated(30)
    x32, y32 = (x + 1e3).astype(np.float32), (y - 1e3).astype(np.float32)
    x64, y64 = x32.astype(np.float64), y32.astype(np.float64)
    for cka in ALL_CKAS.values():
        result = cka(torch.from_numpy(x32), y32)
        assert type(result) is float
        assert result == pytest.approx(cka(x64, y64), abs=1e-12)
    streaming = MinibatchCKA(1, 1)
    streaming.update([torch.from_numpy(x32)], [y32])
    assert streaming.compute()[0, 0] == pytest.approx(linear_cka(x64, y64, True), abs=1e-12)


def test_mismatched_examples_and_bad_settings_are_rejected():
    x = random(10, 3)
    with pytest.raises(CKAError, match="same examples"):
        linear_cka(x, x[:9])
    with pytest.raises(CKAError, match="at least 4"):
        linear_cka(x[:3], x[:3], debiased=True)
    with pytest.raises(CKAError, match="threshold"):
        rbf_cka(x, x, threshold=0.0)
    with pytest.raises(CKAError, match="median"):
        rbf_cka(x, np.zeros((10, 3)))
