"""Statistics over the seeds of a cell, and of a cell against its reference.

Mean, sample standard deviation (ddof=1) and a 95% confidence interval from the
t-distribution. Test, on final test accuracy: a paired t-test over the seeds both cells
have (two at least), else Welch's t-test over all their seeds (two each at least), else
none ("too few seeds"). The difference reported is that of the samples the test used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Stat:
    n: int
    mean: float
    std: float | None  # None below two values
    ci_low: float | None
    ci_high: float | None


def summarize(values: Sequence[float]) -> Stat | None:
    """Mean, sample std and 95% t-interval of the values; None for no values."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return None
    mean = float(values.mean())
    if n < 2:
        return Stat(n, mean, None, None, None)
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return Stat(n, mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class Comparison:
    reference: str  # the reference cell's id
    test: str  # "paired t-test" | "Welch's t-test" | "too few seeds" | "reference" | "reference has no finished runs"
    diff: float | None = None  # cell − reference, in the compared column's unit
    p_value: float | None = None  # None: no test, or no variance to test
    n_pairs: int | None = None  # seeds in both cells (paired test)
    n: tuple[int, int] = (0, 0)  # values of (cell, reference) the test used


def compare(values: dict[int, float], reference: dict[int, float], reference_id: str) -> Comparison:
    """Cell against reference, both given as {seed: value}."""
    if not reference:
        return Comparison(reference_id, "reference has no finished runs")
    common = sorted(set(values) & set(reference))
    if len(common) >= 2:
        a = np.array([values[s] for s in common])
        b = np.array([reference[s] for s in common])
        p = _p_value(stats.ttest_rel, a, b)
        return Comparison(reference_id, "paired t-test", float((a - b).mean()), p, len(common), (len(a), len(b)))
    a, b = np.array(list(values.values())), np.array(list(reference.values()))
    diff = float(a.mean() - b.mean()) if len(a) else None
    if len(a) >= 2 and len(b) >= 2:
        p = _p_value(lambda x, y: stats.ttest_ind(x, y, equal_var=False), a, b)
        return Comparison(reference_id, "Welch's t-test", diff, p, None, (len(a), len(b)))
    return Comparison(reference_id, "too few seeds", diff, None, None, (len(a), len(b)))


def _p_value(test, a, b) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical samples: nan, reported as None
        p = float(test(a, b).pvalue)
    return None if math.isnan(p) else p
