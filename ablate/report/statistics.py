"""Statistics over the seeds of a cell, and of a cell against its reference.

Mean and sample standard deviation (ddof=1) from two seeds; a 95% interval only from
MIN_SEEDS seeds on (below that an interval says more about luck than about the cell, so
none is given and the reason is kept). An interval on a percentage (accuracy) is the
t-interval of the logits, mapped back: it never leaves [0, 100]; other quantities get
the plain t-interval.

Test, on final test accuracy: a paired t-test over the seeds both cells have (two at
least), else Welch's t-test over all their seeds (two each at least), else none ("too
few seeds"). The difference reported is that of the samples the test used, with its 95%
interval (from MIN_SEEDS pairs or seeds per side on) and the minimum detectable
difference: the smallest true difference the same test would find with 80% power at
α = 0.05, given the n and the seed spread the study had (statsmodels' t-test power).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower

from ..metrics import LEVEL, MIN_SEEDS, interval, t_interval

POWER = 0.8  # for the minimum detectable difference


@dataclass(frozen=True)
class Stat:
    n: int
    mean: float
    std: float | None  # None below two values
    ci_low: float | None
    ci_high: float | None
    no_interval: str | None = None  # why there is no interval, when there is none

    @property
    def has_interval(self) -> bool:
        return self.ci_low is not None


def too_few(n: int) -> str:
    return f"no interval: n = {n} < {MIN_SEEDS} seeds"


def summarize(values: Sequence[float], percent: bool = False) -> Stat | None:
    """Mean, sample std and 95% interval of the values (logit scale when `percent`);
    None for no values."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return None
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n >= 2 else None
    if n < MIN_SEEDS:
        return Stat(n, mean, std, None, None, too_few(n))
    low, high = interval(values, percent)
    return Stat(n, mean, std, low, high)


@dataclass(frozen=True)
class Comparison:
    reference: str  # the reference cell's id
    test: str  # "paired t-test" | "Welch's t-test" | "too few seeds" | "reference" | "reference has no finished runs"
    diff: float | None = None  # cell − reference, in the compared column's unit
    p_value: float | None = None  # None: no test, or no variance to test
    n_pairs: int | None = None  # seeds in both cells (paired test)
    n: tuple[int, int] = (0, 0)  # values of (cell, reference) the test used
    ci_low: float | None = None  # 95% interval of diff, from MIN_SEEDS on
    ci_high: float | None = None
    mdd: float | None = None  # minimum detectable difference (80% power, α = 0.05), from MIN_SEEDS on
    spread: float | None = None  # the larger seed std of the two cells
    p_holm: float | None = None  # p_value after Holm's correction over the report's comparisons

    @property
    def noisy(self) -> bool:
        """The seeds of either cell spread wider than the difference compared."""
        return self.spread is not None and self.diff is not None and self.spread > abs(self.diff)


def compare(values: dict[int, float], reference: dict[int, float], reference_id: str) -> Comparison:
    """Cell against reference, both given as {seed: value}."""
    if not reference:
        return Comparison(reference_id, "reference has no finished runs")
    common = sorted(set(values) & set(reference))
    a_all, b_all = np.array(list(values.values())), np.array(list(reference.values()))
    spreads = [float(x.std(ddof=1)) for x in (a_all, b_all) if len(x) >= 2]
    spread = max(spreads) if spreads else None
    if len(common) >= 2:
        a = np.array([values[s] for s in common])
        b = np.array([reference[s] for s in common])
        p = _p_value(stats.ttest_rel, a, b)
        low = high = mdd = None
        if len(common) >= MIN_SEEDS:
            low, high = t_interval(a - b)
            mdd = _mdd(float(np.std(a - b, ddof=1)), TTestPower().solve_power(
                nobs=len(common), alpha=1 - LEVEL, power=POWER))
        return Comparison(reference_id, "paired t-test", float((a - b).mean()), p, len(common), (len(a), len(b)),
                          low, high, mdd, spread)
    a, b = a_all, b_all
    diff = float(a.mean() - b.mean()) if len(a) else None
    if len(a) >= 2 and len(b) >= 2:
        p = _p_value(lambda x, y: stats.ttest_ind(x, y, equal_var=False), a, b)
        low = high = mdd = None
        if min(len(a), len(b)) >= MIN_SEEDS:
            result = stats.ttest_ind(a, b, equal_var=False).confidence_interval(LEVEL)
            low, high = float(result.low), float(result.high)
            pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
            mdd = _mdd(pooled, TTestIndPower().solve_power(nobs1=len(a), ratio=len(b) / len(a),
                                                           alpha=1 - LEVEL, power=POWER))
        return Comparison(reference_id, "Welch's t-test", diff, p, None, (len(a), len(b)), low, high, mdd, spread)
    return Comparison(reference_id, "too few seeds", diff, None, None, (len(a), len(b)), spread=spread)


def _mdd(sd: float, effect_size: float) -> float | None:
    """The difference `effect_size` standard deviations `sd` wide; None without spread."""
    return float(effect_size * sd) if sd > 0 else None


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (statsmodels), None kept where no test ran."""
    present = [p for p in p_values if p is not None]
    if not present:
        return [None] * len(p_values)
    adjusted = iter(multipletests(present, alpha=1 - LEVEL, method="holm")[1])
    return [None if p is None else float(next(adjusted)) for p in p_values]


def _p_value(test, a, b) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical samples: nan, reported as None
        p = float(test(a, b).pvalue)
    return None if math.isnan(p) else p
