"""What would settle a claim that is inconclusive at a study's budget.

A claim's verdict comes from the 95% t-interval  est ± t(n−1)·s/√n  of a mean over n
seeds (or seed pairs) against a threshold θ. At the same budget and seed spread s, the
interval excludes θ once

    t(m−1) · s / √m  <  |est − θ|

so the smallest such m is the number of seeds that settles it, if est stays where it is.
That is a statement about this budget only: the paper's claims are about its full
budget, which a study file's own settings are (the overrides of a CPU run shrink it), so
the command printed runs the study file as written, with m seeds, on a GPU.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from scipy import stats

from ..metrics import LEVEL

MAX_SEEDS = 50  # beyond this, more seeds at this budget is not a sensible way to settle it


@dataclass(frozen=True)
class Margin:
    """The interval a verdict came from: a mean over `n` values against `threshold`."""

    estimate: float
    low: float
    high: float
    n: int
    threshold: float
    per_seed: int = 1  # values each seed adds (a mean over several depths' pairs: one per depth)


def _t(n: int) -> float:
    return float(stats.t.ppf(0.5 + LEVEL / 2, n - 1))


def seeds_to_settle(margin: Margin) -> int | None:
    """The fewest seeds, more than the margin has, whose values would give an interval at
    the same spread that leaves out the threshold; None when the estimate sits on the
    threshold or more than MAX_SEEDS seeds would be needed."""
    gap = abs(margin.estimate - margin.threshold)
    spread = (margin.high - margin.low) / 2 * math.sqrt(margin.n) / _t(margin.n)  # s, from the half-width
    for seeds in range(margin.n // margin.per_seed + 1, MAX_SEEDS + 1):
        m = seeds * margin.per_seed
        if gap > 0 and _t(m) * spread / math.sqrt(m) < gap:
            return seeds
    return None


def gpu_command(study_path: str, seeds: int) -> str:
    """The study file as written (its full budget), with `seeds` seeds, on a GPU."""
    return (f"ablate run {study_path} --set 'seeds={json.dumps(list(range(seeds)))}' --jobs 4 && "
            f"ablate report {study_path} --set 'seeds={json.dumps(list(range(seeds)))}'")


def settle_lines(inconclusive: list, study_path: str, budget: str, file_seeds: int) -> list[str]:
    """One line per inconclusive claim that carries its margins: the seeds that would
    settle it at this budget, and the GPU command at the study file's own budget (with
    those seeds, or the file's own `file_seeds` where more)."""
    lines = []
    for claim in inconclusive:
        needed = [seeds_to_settle(m) for m in claim.margins if m.low <= m.threshold <= m.high]
        if not needed:
            continue
        at_budget = (f"about {max(needed)} seeds at this budget ({budget}) would settle it if the differences "
                     f"stay where they are" if None not in needed else
                     f"more seeds at this budget ({budget}) would not settle it (a difference sits on its threshold, "
                     f"or more than {MAX_SEEDS} seeds would be needed)")
        seeds = max([file_seeds, *(n for n in needed if n is not None)])
        lines.append(f"- *{claim.claim}*: {at_budget}. At the study file's own budget, on a GPU: "
                     f"`{gpu_command(study_path, seeds)}`")
    return lines
