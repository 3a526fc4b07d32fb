"""Search studies: the search: block, an Optuna search over settings instead of listed cells."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import TrainConfig
from ..metrics import OBJECTIVES
from .cells import resolve_cell
from .settings import Given, check_factor_name, field_value, ignored_by, value_or_default
from .wording import show, unknown_choice
from .yaml_lines import Location, Source

SEARCH_KEYS = ("sampler", "objectives", "space", "n_trials", "pruner")
OBJECTIVE_KEYS = ("metric", "direction")
RANGE_KEYS = ("low", "high", "log", "step")
SAMPLERS = ("tpe", "random", "nsga2")
PRUNERS = ("median", "hyperband")
# OBJECTIVES (ablate.metrics): what a search may optimise and which way; test metrics are
# absent on purpose, since selecting on them leaks the test set.


@dataclass(frozen=True)
class SearchSpace:
    sampler: str  # "tpe" | "random" | "nsga2"
    objectives: tuple[tuple[str, str], ...]  # ((metric, "maximize" | "minimize"), ...)
    # key -> {"kind": "int"|"float", "low", "high", "log", "step"} or {"kind": "categorical", "choices": [...]}
    params: dict
    n_trials: int
    pruner: str | None  # None | "median" | "hyperband"


def searched_keys(search) -> tuple:
    """The keys a search block samples, read before it is validated."""
    space = search.get("space") if isinstance(search, dict) else None
    return tuple(space) if isinstance(space, dict) else ()


def read_search(source: Source, search, fixed: dict[str, Given]) -> SearchSpace:
    path = ("search",)
    search = source.mapping(search, path, "search")
    source.check_keys(search, path, SEARCH_KEYS, "search")

    sampler = search.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise source.error(path + ("sampler",), unknown_choice("sampler", sampler, SAMPLERS))
    objectives = _objectives(source, search.get("objectives", ["best_val_acc"]), fixed)
    if sampler == "nsga2" and len(objectives) < 2:
        raise source.error(path + ("sampler",), "nsga2 is for several objectives; use tpe for one, or add an "
                                                "objective such as peak_memory_bytes_max")
    pruner = search.get("pruner")
    if pruner is not None and pruner not in PRUNERS:
        raise source.error(path + ("pruner",), unknown_choice("pruner", pruner, PRUNERS))
    if pruner is not None and len(objectives) > 1:
        raise source.error(path + ("pruner",), "Optuna cannot prune a search with several objectives; "
                                               "set pruner: null")
    n_trials = search.get("n_trials")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise source.error(path + ("n_trials",), f"the trial budget is an integer >= 1, got {show(n_trials)}")
    if "space" not in search:
        raise source.error(path, "a search needs a 'space:' of settings to sample")
    params = _space(source, search["space"], fixed)
    return SearchSpace(sampler=sampler, objectives=objectives, params=params, n_trials=n_trials, pruner=pruner)


def _objectives(source: Source, objectives, fixed: dict[str, Given]) -> tuple[tuple[str, str], ...]:
    path = ("search", "objectives")
    if not isinstance(objectives, list) or not objectives:
        raise source.error(path, f"expected a list of metrics such as [best_val_acc], got {show(objectives)}")
    parsed = []
    for index, objective in enumerate(objectives):
        at = path + (index,)
        if isinstance(objective, dict):
            source.check_keys(objective, at, OBJECTIVE_KEYS, "objective")
            metric, direction = objective.get("metric"), objective.get("direction")
        else:
            metric, direction = objective, None
        if isinstance(metric, str) and "test" in metric:
            raise source.error(at, f"{metric} is a test metric; selecting on it leaks the test set. "
                                   "Use best_val_acc")
        if metric not in OBJECTIVES:
            raise source.error(at, unknown_choice("metric", metric, OBJECTIVES))
        if direction is not None and direction != OBJECTIVES[metric]:
            raise source.error(at, f"{metric} is to {OBJECTIVES[metric]}, not {show(direction)}; drop 'direction'")
        if metric in (m for m, _ in parsed):
            raise source.error(at, f"{metric} is listed twice")
        if "val" in metric and value_or_default(fixed, "val_size") == 0:
            raise source.error(at, f"{metric} needs a validation split, but val_size is 0; set val_size "
                                   "in settings")
        parsed.append((metric, OBJECTIVES[metric]))
    return tuple(parsed)


def _space(source: Source, space, fixed: dict[str, Given]) -> dict:
    path = ("search", "space")
    space = source.mapping(space, path, "the search space")
    if not space:
        raise source.error(path, "the space is empty; give settings to sample such as 'lr: {low: 0.01, high: 1.0}'")
    rule = value_or_default(fixed, "rule")
    params = {}
    for key, spec in space.items():
        at = path + (key,)
        check_factor_name(source, key, at)
        if key in fixed:
            raise source.error(at, f"{key} is both searched and fixed (line {source.line(fixed[key].path)}); "
                                   "remove one")
        if "rule" not in space and key in ignored_by(rule):
            raise source.error(at, f"rule {rule} ignores {key}; searching it would train the same network")
        spec = source.mapping(spec, at, f"the space of {key}")
        params[key] = _choices(source, key, spec, at) if "choices" in spec else _range(source, key, spec, at)
    for key, param in params.items():  # every extreme of the space must be trainable
        values = param["choices"] if "choices" in param else [param["low"], param["high"]]
        names = ["choices"] * len(values) if "choices" in param else ["low", "high"]
        for value, name in zip(values, names):
            resolve_cell(source, fixed, {key: Given(value, path + (key, name))}, (key,), {})
    return params


def _choices(source: Source, key: str, spec: dict, path: Location) -> dict:
    extra = [k for k in spec if k != "choices"]
    if extra:
        raise source.error(path + (extra[0],), "give either 'choices' or a range (low, high, log, step), not both")
    choices = spec["choices"]
    if not isinstance(choices, list) or not choices:
        raise source.error(path + ("choices",), f"expected a non-empty list, got {show(choices)}")
    normalised = []
    for index, choice in enumerate(choices):
        value = field_value(source, key, choice, path + ("choices", index))
        if isinstance(value, tuple):
            raise source.error(path + ("choices", index), f"{key} takes a list; Optuna samples only single values")
        if value in normalised:
            raise source.error(path + ("choices", index), f"{show(choice)} is listed twice")
        normalised.append(value)
    return {"kind": "categorical", "choices": normalised}


def _range(source: Source, key: str, spec: dict, path: Location) -> dict:
    source.check_keys(spec, path, RANGE_KEYS + ("choices",), "range")
    annotation = TrainConfig.model_fields[key].annotation
    number = next((t for t in (int, float) if annotation in (t, t | None)), None)
    if number is None:
        raise source.error(path, f"{key} is not a number; give 'choices: [...]'")
    for bound in ("low", "high"):
        if bound not in spec:
            raise source.error(path, "a range needs 'low' and 'high' (or give 'choices')")
    low, high = (field_value(source, key, spec[b], path + (b,)) for b in ("low", "high"))
    for bound, value in (("low", low), ("high", high)):
        if value is None:
            raise source.error(path + (bound,), f"expected {'an integer' if number is int else 'a number'}, got null")
    if not low < high:
        raise source.error(path + ("high",), f"high must be above low ({show(low)}); "
                                             "a single value belongs in settings")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise source.error(path + ("log",), f"expected true or false, got {show(log)}")
    if log and low <= 0:
        raise source.error(path + ("low",), f"a log range needs low > 0, got {show(low)}")
    step = spec.get("step")
    if step is not None:
        valid = isinstance(step, int if number is int else (int, float)) and not isinstance(step, bool)
        if not valid or not 0 < step < float("inf"):
            raise source.error(path + ("step",), f"expected a positive {'integer' if number is int else 'number'}, "
                                                 f"got {show(step)}")
        if log and not (number is int and step == 1):
            raise source.error(path + ("step",), "Optuna cannot combine log with a step; drop one")
    return {"kind": number.__name__, "low": low, "high": high, "log": log,
            "step": number(step) if step is not None else None}
