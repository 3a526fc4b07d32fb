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
