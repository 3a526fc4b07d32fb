"""The figures a finished training run is summed up by, in one list: what the tracking
store logs as a trial's summary, what its Optuna trial keeps, what a search may optimise
and what the report reads. Each says how it comes from the Trainer's result (or from the
network's cost, ablate.engine.cost) and which way is better."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    name: str
    value: Callable[[dict, dict], float | None]  # (training result, network cost) -> value
    direction: str | None = None  # "maximize" | "minimize" for a figure a search may optimise
    test: bool = False  # read off the test set: never a search objective (that would leak it)


def _final(key: str) -> Callable[[dict, dict], float | None]:
    return lambda result, cost: (result["final"] or {}).get(key)


def _best(key: str) -> Callable[[dict, dict], float | None]:
    return lambda result, cost: (result["best"] or {}).get(key)


def _cost(key: str) -> Callable[[dict, dict], float | None]:
    return lambda result, cost: cost.get(key)


SUMMARIES = (
    Summary("final_test_acc", _final("test_acc"), test=True),
    Summary("final_val_acc", _final("val_acc"), "maximize"),
    Summary("final_train_loss", _final("train_loss"), "minimize"),
    Summary("final_train_acc", _final("train_acc")),
    Summary("best_val_acc", _best("val_acc"), "maximize"),
    Summary("best_test_acc", _best("test_acc"), test=True),
    Summary("best_epoch", _best("epoch")),
    Summary("peak_memory_bytes_max", lambda result, cost: result["peak_memory_bytes"], "minimize"),
    Summary("time_per_epoch_s", lambda result, cost: result["time_per_epoch_s"], "minimize"),
    Summary("epochs_completed", lambda result, cost: result["epochs_completed"]),
)
# the network's own figures, known before it trains
COSTS = (
    Summary("aux_flops", _cost("aux_flops"), "minimize"),
    Summary("aux_params", _cost("aux_params"), "minimize"),
    Summary("backbone_flops", _cost("backbone_flops")),
    Summary("backbone_params", _cost("backbone_params")),
    Summary("train_flops_per_example", _cost("train_flops_per_example"), "minimize"),
)
BY_NAME = {s.name: s for s in SUMMARIES + COSTS}
# what a search may optimise, and which way
OBJECTIVES = {s.name: s.direction for s in SUMMARIES + COSTS if s.direction is not None and not s.test}


def summarize(result: dict, cost: dict | None = None, which=SUMMARIES) -> dict[str, float | None]:
    """{name: value} of `which` for a training result (None where a figure is missing)."""
    return {s.name: s.value(result, cost or {}) for s in which}


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------- units
# Inside ablate, accuracies are fractions and memory is bytes (what the Trainer returns).
# Where a person reads them (MLflow, the report) accuracies are percent and memory MiB,
# and the unit is in the name, so a chart never leaves one guessing. Old stores logged the
# inside names; `inside_name` reads both.
_MIB = 2.0 ** 20
LAYER = "_by_layer"  # a per-layer series: its MLflow "step" is the layer index, not a training step


def shown(key: str, value: float) -> tuple[str, float]:
    """The name and value a figure is logged under: accuracies in percent (`*_acc_pct`),
    memory in MiB (`*_bytes*` becomes `*_mib*`), anything else as it is."""
    if key.endswith("_acc") or "_acc_" in key and key.rsplit("_", 1)[-1].isdigit():
        head, _, index = key.rpartition("_acc")
        return f"{head}_acc_pct{index}", value * 100.0
    if "_bytes" in key:
        return key.replace("_bytes", "_mib", 1), value / _MIB
    return key, value


def layer_series_name(key: str) -> str:
    """The logged name of a per-layer series (probe_acc -> probe_acc_pct_by_layer)."""
    return shown(key, 0.0)[0] + LAYER


def inside(name: str, value: float) -> tuple[str, float]:
    """The inverse of `shown` (and of `layer_series_name`): a logged name and value back
    as ablate holds them; names logged before units were shown pass through."""
    name = name.removesuffix(LAYER)
    if "_acc_pct" in name:
        return name.replace("_acc_pct", "_acc", 1), value / 100.0
    if "_mib" in name:
        return name.replace("_mib", "_bytes", 1), value * _MIB
    return name, value


# the figures a cell is judged by: its summary run (MLflow) and the report's table
HEADLINE = ("final_test_acc", "best_test_acc", "peak_memory_bytes_max", "time_per_epoch_s", "aux_flops")


# One rule for every interval ablate shows (the report's table and each cell's MLflow run):
# none from fewer than MIN_SEEDS seeds; a percentage's interval is the t-interval of its
# logits mapped back, so it never leaves [0, 100].
MIN_SEEDS = 3
LEVEL = 0.95
_EDGE = 1e-4  # a percentage of exactly 0 or 100 has no logit: clip to this fraction first


def t_interval(values) -> tuple[float, float]:
    """The LEVEL t-interval of the mean of `values` (two at least)."""
    import numpy as np
    from scipy import stats  # only a summary needs it

    values = np.asarray(values, dtype=float)
    n = len(values)
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * float(np.std(values, ddof=1)) / math.sqrt(n)
    mean = float(np.mean(values))
    return mean - half, mean + half


def interval(values, percent: bool = False) -> tuple[float, float] | None:
    """The LEVEL interval of the mean of `values` (on the logit scale when `percent`);
    None below MIN_SEEDS values."""
    import numpy as np

    if len(values) < MIN_SEEDS:
        return None
    if not percent:
        return t_interval(values)
    p = np.clip(np.asarray(values, dtype=float) / 100.0, _EDGE, 1 - _EDGE)
    low, high = t_interval(np.log(p / (1 - p)))
    return 100.0 / (1 + math.exp(-low)), 100.0 / (1 + math.exp(-high))


def spread(values, percent: bool = False) -> dict[str, float | None]:
    """Mean, sample std (ddof=1; None below two values) and the interval of `interval`
    (None below MIN_SEEDS values); everything None for no values."""
    n = len(values)
    if n == 0:
        return {"mean": None, "std": None, "ci95_low": None, "ci95_high": None}
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n >= 2 else None
    low, high = interval(values, percent) or (None, None)
    return {"mean": mean, "std": std, "ci95_low": low, "ci95_high": high}
