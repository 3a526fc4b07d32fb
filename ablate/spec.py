"""Study files: YAML → a validated StudySpec → the trials to train, each with a stable id.

The format (studies/README.md has an annotated example):

    name: depth_decay            # optional; default: the file name without .yaml
    settings:                    # fixed settings: any `ablate train` option, underscores for dashes
      model: resnet32
      rule: auglocal
    grid:                        # factors to vary; the cells are their full product ...
      aux_depth: [1, 2, 3]
      decay: [constant, linear]
      decay_coeff: [0.5, 1.0]
    tie:                         # ... except that a tied factor varies only where its condition
      decay_coeff: {decay: [linear]}   # holds; elsewhere it is left out of the cell
    cells:                       # explicit cells, merged over settings, after the grid's
      - {rule: bp}
    seeds: [0, 1, 2]             # each cell is trained once per seed; default [0]
    storage: null                # Optuna storage URL; default: SQLite in runs/<name>/ beside the file
    tracking: {uri: null, experiment: null}   # MLflow; default sqlite in runs/<name>/, experiment = name
    report: {reference: {rule: bp}}           # the cell every other cell is compared with
    search: ...                  # instead of grid/cells: an Optuna search (see `SearchSpace`)
    analysis: {}                 # kept as given for the analysis step

Cells that differ only in settings without meaning are one cell. A factor that a cell's
rule ignores is left out of that cell and takes its default: `bp` ignores aux_depth,
selection, decay, decay_coeff and head_layers; dgl, infopro and predsim ignore the first
four. A tied factor whose condition fails is left out the same way. Cells that end up
with the same resolved settings are collapsed, so `rule: [bp, auglocal] × aux_depth: [1, 3]`
is three cells, not four.

A cell id is the first 12 hex digits of the SHA-256 of the cell's resolved settings as
canonical JSON, without the seed and without the settings that only say how to run
(EXECUTION_ONLY): a study keeps its ids when it moves to another machine or data path.

Every mistake raises SpecError, one line that names the file, the line and the key:
"studies/x.yaml:12: key 'aux_dpth': unknown setting; did you mean 'aux_depth'?".
Loading validates every cell (settings, its backbone, its auxiliary plan) and writes nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import os
import re
import typing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import pydantic
import yaml

from .config import TrainConfig
from .errors import UserInputError
from .plan import PlanError, make_plan

# --------------------------------------------------------------------------------------
# Vocabulary


@dataclass(frozen=True)
class DatasetShape:
    channels: int
    image_size: int
    num_classes: int
    train_size: int | None  # examples in the training set before the validation split


# What the backbone sees of each dataset, known without reading it. imagefolder's class
# count is the folder's; a plan does not depend on it, so validation assumes ImageNet's.
DATASET_SHAPES = {
    "digits": DatasetShape(1, 8, 10, 1438),
    "fashion-mnist": DatasetShape(1, 28, 10, 60_000),
    "cifar10": DatasetShape(3, 32, 10, 50_000),
    "svhn": DatasetShape(3, 32, 10, 73_257),
    "stl10": DatasetShape(3, 96, 10, 5_000),
    "imagefolder": DatasetShape(3, 224, 1000, None),
}

SETTINGS = tuple(k for k in TrainConfig.model_fields if k != "seed")
# How to run, not what is trained: left out of cell ids, and never a factor.
EXECUTION_ONLY = frozenset({"device", "num_workers", "eval_batch_size", "download", "data_root"})
AUGLOCAL_ONLY = ("aux_depth", "selection", "decay", "decay_coeff")
IGNORED_BY_RULE = {
    "bp": frozenset(AUGLOCAL_ONLY + ("head_layers",)),
    "auglocal": frozenset(),
    "dgl": frozenset(AUGLOCAL_ONLY),
    "infopro": frozenset(AUGLOCAL_ONLY),
    "predsim": frozenset(AUGLOCAL_ONLY),
}

STUDY_KEYS = ("name", "settings", "grid", "tie", "cells", "seeds", "storage", "tracking", "report",
              "search", "analysis")
TRACKING_KEYS = ("uri", "experiment")
REPORT_KEYS = ("reference",)
SEARCH_KEYS = ("sampler", "objectives", "space", "n_trials", "pruner")
OBJECTIVE_KEYS = ("metric", "direction")
RANGE_KEYS = ("low", "high", "log", "step")
SAMPLERS = ("tpe", "random", "nsga2")
PRUNERS = ("median", "hyperband")
# Metrics a search may optimise (the names the tracking module logs) and their direction.
# Test metrics are absent on purpose: selecting on them leaks the test set.
OBJECTIVES = {
    "best_val_acc": "maximize",
    "final_val_acc": "maximize",
    "final_train_loss": "minimize",
    "peak_memory_bytes_max": "minimize",
    "time_per_epoch_s": "minimize",
    "aux_flops": "minimize",
    "aux_params": "minimize",
    "train_flops_per_example": "minimize",
}
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SpecError(UserInputError):
    """A mistake in a study file, in one line: "FILE:LINE: key 'KEY': problem; fix"."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None, kind: str = "key"):
        self.file, self.line, self.key = file, line, key
        where = ":".join(str(p) for p in (file, line) if p is not None)
        text = " ".join(message.split())
        if key is not None:
            text = f"{kind} '{key}': {text}"
        super().__init__(f"{where}: {text}" if where else text)


# --------------------------------------------------------------------------------------
# What loading produces


@dataclass(frozen=True)
class Trial:
    cell_id: str
    seed: int
    config: TrainConfig  # fully resolved, seed included
    factors: dict  # {key: value} of the study's varied keys that mean something in this cell

    @property
    def key(self) -> str:
        return f"{self.cell_id}-s{self.seed}"


@dataclass(frozen=True)
class SearchSpace:
    sampler: str  # "tpe" | "random" | "nsga2"
    objectives: tuple[tuple[str, str], ...]  # ((metric, "maximize" | "minimize"), ...)
    # key -> {"kind": "int"|"float", "low", "high", "log", "step"} or {"kind": "categorical", "choices": [...]}
    params: dict
    n_trials: int
    pruner: str | None  # None | "median" | "hyperband"


@dataclass(frozen=True)
class StudySpec:
    name: str
    path: Path  # the study file, resolved
    directory: Path  # default home of the study's state: <file's folder>/runs/<name>/
    fixed: dict  # the fixed settings (overrides applied), validated; defaults fill the rest
    factors: tuple[str, ...]  # the keys that vary between cells (grid order, then cells')
    seeds: tuple[int, ...]
    trials: tuple[Trial, ...]  # grid: every cell × seed, seeds inner; search: ()
    search: SearchSpace | None
    storage: str | None  # Optuna storage URL; None: the default
    tracking_uri: str | None  # MLflow tracking URI; None: the default
    experiment: str
    reference: dict | None  # the report's reference cell, as factor values
    analysis: dict | None
    overrides: dict = field(default_factory=dict)  # what load_study's caller set over the file

    def cells(self) -> list[tuple[str, dict]]:
        """The distinct cells, (cell_id, factors), in order."""
        seen = {}
        for trial in self.trials:
            seen.setdefault(trial.cell_id, trial.factors)
        return list(seen.items())

    def trial(self, values: dict, seed: int) -> Trial:
        """The trial of the fixed settings with `values` (e.g. a search's sampled point)
        over them. Raises SpecError when the combination cannot be trained."""
        source = _Source(str(self.path), {})
        fixed = {k: _Given(v, ("settings", k)) for k, v in self.fixed.items()}
        chosen = {}
        for key, value in values.items():
            where = ("search", "space", key)
            _check_factor_name(source, key, where)
            chosen[key] = _Given(_field_value(source, key, value, where), where)
        config, factors = _resolve(source, fixed, chosen, tuple(values), {})
        _check_cell(source, config, {**fixed, **chosen})
        return Trial(cell_id(config), seed, config.model_copy(update={"seed": seed}), factors)


def cell_id(config: TrainConfig) -> str:
    """12 hex digits identifying what a config trains, whatever its seed and machine."""
    meaning = {k: v for k, v in config.flat().items() if k != "seed" and k not in EXECUTION_ONLY}
    canonical = json.dumps(meaning, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------
# Reading the file: data plus the line of every key and list item


class _StudyLoader(yaml.SafeLoader):
    """SafeLoader that also reads 1e-4 as a number (YAML 1.1 wants 1.0e-4, and a weight
    decay silently read as text would be a poor first experience)."""


_StudyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


Location = tuple  # where a value sits in the document: ("grid", "aux_depth", 2)


@dataclass(frozen=True)
class _Given:
    value: Any  # validated and normalised (TrainConfig's type)
    path: Location  # where it came from; ("override", key) for load_study's overrides


@dataclass
class _Source:
    file: str
    lines: dict  # Location -> 1-based line

    def error(self, path: Location, message: str) -> SpecError:
        if path[:1] == ("override",):
            return SpecError(message, file=self.file, key=path[1], kind="override")
        at = path
        while at not in self.lines and at:
            at = at[:-1]
        return SpecError(message, file=self.file, line=self.lines.get(at), key=_key_label(path))

    def line(self, path: Location) -> int | None:
        return self.lines.get(path)


def _key_label(path: Location) -> str | None:
    """The dotted key a user sees: settings' keys bare, list positions left to the line."""
    names = [p for p in path if isinstance(p, str)]
    if names[:1] == ["settings"] and len(names) > 1:
        names = names[1:]
    return ".".join(names) or None


def _read(path: Path, file: str) -> tuple[dict, _Source]:
    if not path.exists():
        raise SpecError("no such study file", file=file)
    if path.is_dir():
        raise SpecError("is a folder; give a study's .yaml file", file=file)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"not UTF-8 text ({err.reason} at byte {err.start})", file=file) from None
    loader = _StudyLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "cannot be read"
        if err.context and err.context_mark and err.problem_mark and err.context_mark.line != mark.line:
            problem += f" ({err.context} on line {err.context_mark.line + 1})"
        raise SpecError(f"invalid YAML: {problem}", file=file, line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as err:
        raise SpecError(f"invalid YAML: {err}", file=file) from None
    finally:
        loader.dispose()
    source = _Source(file, {})
    if data is None:
        raise SpecError("the file is empty; a study needs 'settings:' and a 'grid:', 'cells:' or 'search:'",
                        file=file, line=1)
    _record_lines(source, node, (), set())
    if not isinstance(data, dict):
        raise source.error((), f"a study is a mapping of keys ({', '.join(STUDY_KEYS)}), not {_kind(data)}")
    return data, source


def _record_lines(source: _Source, node: yaml.Node, path: Location, active: set) -> None:
    """Fill source.lines for every mapping key and list item under `node`; a key given
    twice in one mapping is an error (PyYAML would keep the last silently)."""
    source.lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in active:  # a recursive alias
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            child = path + (key,)
            if key is not None and key != "<<":
                if key in seen:
                    source.lines[child] = key_node.start_mark.line + 1
                    raise source.error(child, "given twice in the same mapping; keep one")
                seen.add(key)
                source.lines[child] = key_node.start_mark.line + 1
            _record_lines(source, value_node, child, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(source, item, path + (index,), active)
    active.discard(id(node))


# --------------------------------------------------------------------------------------
# Values: one setting at a time, against TrainConfig's own field definitions


@cache
def _adapter(key: str) -> pydantic.TypeAdapter:
    info = TrainConfig.model_fields[key]
    return pydantic.TypeAdapter(Annotated[info.annotation, info])


def _default(key: str):
    return TrainConfig.model_fields[key].default


_UnionType = type(int | None)
_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _expected(key: str) -> str:
    annotation = TrainConfig.model_fields[key].annotation
    optional = typing.get_origin(annotation) in (typing.Union, _UnionType) and type(None) in typing.get_args(annotation)
    if optional:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is typing.Literal:
        text = "one of " + ", ".join(typing.get_args(annotation))
    elif typing.get_origin(annotation) is tuple:
        text = "a list of integers"
    else:
        names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        text = names.get(annotation, "a valid value")
    return text + (" or null" if optional else "")


def _field_value(source: _Source, key: str, value, path: Location):
    """The value of setting `key` as TrainConfig holds it; SpecError naming the key otherwise."""
    if isinstance(value, list):
        value = tuple(value)
    try:
        value = _adapter(key).validate_python(value, strict=True)
    except pydantic.ValidationError as err:
        raise source.error(path, _field_problem(key, value, err.errors()[0])) from None
    if key == "dataset" and value not in DATASET_SHAPES:
        raise source.error(path, _unknown_choice("dataset", value, DATASET_SHAPES))
    if key == "model" and value not in _model_names():
        raise source.error(path, _unknown_choice("model", value, _model_names()))
    return value


def _field_problem(key: str, value, error: dict) -> str:
    bound = next((b for b in _BOUNDS if b in (error.get("ctx") or {})), None)
    if bound:
        limit = error["ctx"][bound]
        limit = int(limit) if isinstance(limit, float) and limit.is_integer() else limit
        return f"must be {_BOUNDS[bound]} {limit}, got {_show(value)}"
    if error["type"] == "literal_error":
        options = typing.get_args(TrainConfig.model_fields[key].annotation)
        return _unknown_choice(key, value, options)
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    return f"expected {_expected(key)}, got {_show(value)}"


def _unknown_choice(what: str, value, options) -> str:
    text = f"unknown {what} {_show(value)}; choose one of {', '.join(options)}"
    close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1)
    return text + (f" (did you mean '{close[0]}'?)" if close else "")


def _did_you_mean(name, options) -> str:
    close = difflib.get_close_matches(str(name), list(options), n=1)
    return f"; did you mean '{close[0]}'?" if close else f"; choose from {', '.join(options)}"


def _show(value) -> str:
    """A value as the user wrote it in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def _plain(value) -> str:
    """A value for a listing: like _show, but text unquoted."""
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return value if isinstance(value, str) else _show(value)


def _kind(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the value {_show(value)}"


def _check_setting_name(source: _Source, key, path: Location) -> None:
    if not isinstance(key, str):
        raise source.error(path[:-1], f"{_show(key)} is not a setting name")
    if key == "seed":
        raise source.error(path, "seeds are given by the top-level 'seeds: [...]' list")
    if key not in SETTINGS:
        raise source.error(path, "unknown setting" + _did_you_mean(key, SETTINGS))


def _mapping(source: _Source, data, path: Location, what: str) -> dict:
    if not isinstance(data, dict):
        raise source.error(path, f"{what} must be a mapping (key: value lines), got {_kind(data)}")
    return data


def _check_keys(source: _Source, data: dict, path: Location, allowed, what: str) -> None:
    for key in data:
        if key not in allowed:
            raise source.error(path + (key,), f"unknown {what} key" + _did_you_mean(key, allowed))


# --------------------------------------------------------------------------------------
# Loading


def load_study(path: str | os.PathLike, overrides: dict | None = None) -> StudySpec:
    """Read, validate and expand a study file. `overrides` ({"epochs": 2, ...}) replace
    fixed settings without editing the file. Raises SpecError; writes nothing."""
    file = os.fspath(path)
    path = Path(file)
    data, source = _read(path, file)
    for key in data:
        if key not in STUDY_KEYS:
            hint = (f"'{key}' is a training setting; put it under 'settings:'" if key in SETTINGS
                    else "unknown study key" + _did_you_mean(key, STUDY_KEYS))
            raise source.error((key,), hint)

    name = _name(source, data, path)
    seeds = _seeds(source, data.get("seeds", [0]))
    fixed = _settings(source, data.get("settings") or {})
    if "search" in data and ("grid" in data or "cells" in data):
        other = "grid" if "grid" in data else "cells"
        raise source.error(("search",), f"a study either searches or lists its cells; remove 'search' or '{other}'")
    grid = _grid(source, data.get("grid"), fixed)
    ties = _ties(source, data.get("tie"), grid)
    cells = _cells(source, data.get("cells"))
    if not grid and not cells and "search" not in data:
        raise source.error((), "the study has no cells; add 'grid:', 'cells:' or 'search:'")
    varied = tuple(dict.fromkeys([*grid, *(k for cell in cells for k in cell)]))
    fixed.update(_overrides(source, overrides or {}, varied + _searched_keys(data.get("search"))))

    search = None
    trials: tuple[Trial, ...] = ()
    if "search" in data:
        search = _search(source, data["search"], fixed)
        if len(seeds) != 1:
            raise source.error(("seeds",), "a search trains each sampled point once, with one seed; "
                                           "give a single seed such as [0]")
        varied = tuple(search.params)
    else:
        trials = _expand(source, fixed, grid, ties, cells, varied, seeds)
        _check_grid_has_effect(source, grid, trials)
    tracking = _tracking(source, data.get("tracking"))
    spec = StudySpec(
        name=name, path=path.resolve(), directory=path.resolve().parent / "runs" / name,
        fixed={k: g.value for k, g in fixed.items()}, factors=varied, seeds=seeds, trials=trials,
        search=search, storage=_optional_text(source, data, ("storage",)),
        tracking_uri=tracking.get("uri"), experiment=tracking.get("experiment") or name,
        reference=None, analysis=_analysis(source, data.get("analysis")), overrides=dict(overrides or {}))
    reference = _reference(source, data.get("report"), spec)
    return dataclasses.replace(spec, reference=reference)


def _searched_keys(search) -> tuple:
    space = search.get("space") if isinstance(search, dict) else None
    return tuple(space) if isinstance(space, dict) else ()


def _name(source: _Source, data: dict, path: Path) -> str:
    name = data.get("name", path.stem)
    if "name" in data and not isinstance(name, str):
        raise source.error(("name",), f"expected a name, got {_show(name)}")
    if not NAME_PATTERN.fullmatch(name):
        where = ("name",) if "name" in data else ()
        raise source.error(where, f"study name {name!r} must be letters, digits, '.', '_' and '-' "
                                  "(it names a folder); set 'name:'")
    return name


def _seeds(source: _Source, seeds) -> tuple[int, ...]:
    if not isinstance(seeds, list) or not seeds:
        raise source.error(("seeds",), f"expected a non-empty list of integers such as [0, 1, 2], got {_show(seeds)}")
    for index, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise source.error(("seeds", index), f"a seed is an integer >= 0, got {_show(seed)}")
        if seed in seeds[:index]:
            raise source.error(("seeds", index), f"seed {seed} is listed twice; each seed trains once")
    return tuple(seeds)


def _settings(source: _Source, settings) -> dict[str, _Given]:
    settings = _mapping(source, settings, ("settings",), "settings")
    fixed = {}
    for key, value in settings.items():
        path = ("settings", key)
        _check_setting_name(source, key, path)
        fixed[key] = _Given(_field_value(source, key, value, path), path)
    return fixed


def _check_factor_name(source: _Source, key, path: Location) -> None:
    _check_setting_name(source, key, path)
    if key in EXECUTION_ONLY:
        raise source.error(path, f"{key} says how to run, not what to train, so it cannot vary "
                                 "between cells; put it in settings")


def _grid(source: _Source, grid, fixed: dict) -> dict[str, list[_Given]]:
    if grid is None:
        return {}
    grid = _mapping(source, grid, ("grid",), "grid")
    if not grid:
        raise source.error(("grid",), "the grid is empty; give factors such as 'aux_depth: [1, 2]' or remove it")
    factors = {}
    for key, values in grid.items():
        path = ("grid", key)
        _check_factor_name(source, key, path)
        if key in fixed:
            raise source.error(path, f"{key} is both a grid factor and fixed in settings "
                                     f"(line {source.line(fixed[key].path)}); remove one")
        if not isinstance(values, list):
            raise source.error(path, f"a grid factor is a list of values, got {_show(values)}; "
                                     "a single value belongs in settings")
        if not values:
            raise source.error(path, "the list is empty; give at least one value")
        given = []
        for index, value in enumerate(values):
            item = _Given(_field_value(source, key, value, path + (index,)), path + (index,))
            if any(g.value == item.value for g in given):
                raise source.error(item.path, f"value {_show(value)} is listed twice")
            given.append(item)
        factors[key] = given
    return factors


def _ties(source: _Source, tie, grid: dict) -> dict[str, dict[str, tuple]]:
    """{tied factor: {condition factor: allowed values}}: the tied factor varies only in
    cells where every condition factor takes one of its allowed values."""
    if tie is None:
        return {}
    tie = _mapping(source, tie, ("tie",), "tie")
    ties = {}
    for key, condition in tie.items():
        path = ("tie", key)
        if key not in grid:
            raise source.error(path, "only a grid factor can be tied" + _did_you_mean(key, grid))
        condition = _mapping(source, condition, path, "a tie")
        if not condition:
            raise source.error(path, "the condition is empty; write e.g. '{decay: [linear]}'")
        ties[key] = {}
        for other, allowed in condition.items():
            where = path + (other,)
            if other == key:
                raise source.error(where, "a factor cannot be tied to itself")
            if other not in grid:
                raise source.error(where, "a tie's condition names a grid factor" + _did_you_mean(other, grid))
            if other in tie:
                raise source.error(where, f"{other} is tied itself; tie to factors that are not tied")
            allowed = allowed if isinstance(allowed, list) else [allowed]
            values = []
            for index, value in enumerate(allowed):
                at = where + (index,) if isinstance(condition[other], list) else where
                value = _field_value(source, other, value, at)
                if value not in [g.value for g in grid[other]]:
                    raise source.error(at, f"{_show(value)} is not among the grid's values of {other} "
                                           f"({', '.join(_show(g.value) for g in grid[other])})")
                values.append(value)
            ties[key][other] = tuple(values)
    return ties


def _cells(source: _Source, cells) -> list[dict[str, _Given]]:
    if cells is None:
        return []
    if not isinstance(cells, list) or not cells:
        raise source.error(("cells",), f"expected a non-empty list of mappings such as "
                                       f"'- {{rule: bp}}', got {_show(cells)}")
    parsed = []
    for index, cell in enumerate(cells):
        path = ("cells", index)
        cell = _mapping(source, cell, path, "a cell")
        if not cell:
            raise source.error(path, "the cell is empty; it would repeat settings")
        given = {}
        for key, value in cell.items():
            _check_factor_name(source, key, path + (key,))
            given[key] = _Given(_field_value(source, key, value, path + (key,)), path + (key,))
        parsed.append(given)
    return parsed


def _overrides(source: _Source, overrides: dict, varied: tuple[str, ...]) -> dict[str, _Given]:
    given = {}
    for key, value in overrides.items():
        path = ("override", key)
        _check_setting_name(source, key, path)
        if key in varied:
            raise source.error(path, f"{key} varies between this study's cells; it cannot be fixed "
                                     "by an override (edit the study instead)")
        given[key] = _Given(_field_value(source, key, value, path), path)
    return given


def _optional_text(source: _Source, data: dict, path: Location) -> str | None:
    value = data.get(path[-1])
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise source.error(path, f"expected text or null, got {_show(value)}")
    return value


def _tracking(source: _Source, tracking) -> dict:
    if tracking is None:
        return {}
    tracking = _mapping(source, tracking, ("tracking",), "tracking")
    _check_keys(source, tracking, ("tracking",), TRACKING_KEYS, "tracking")
    return {key: _optional_text(source, tracking, ("tracking", key)) for key in TRACKING_KEYS}


def _analysis(source: _Source, analysis) -> dict | None:
    if analysis is None:
        return None
    return dict(_mapping(source, analysis, ("analysis",), "analysis"))


# --------------------------------------------------------------------------------------
# Cells: expansion, meaning, validation


def _expand(source: _Source, fixed: dict, grid: dict, ties: dict, cells: list, varied: tuple,
            seeds: tuple[int, ...]) -> tuple[Trial, ...]:
    grid_cells = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] if grid else []
    chosen_cells = grid_cells + cells
    resolved: dict[str, tuple[TrainConfig, dict]] = {}
    for chosen in chosen_cells:
        config, factors = _resolve(source, fixed, chosen, varied, ties)
        identity = cell_id(config)
        if identity not in resolved:
            _check_cell(source, config, {**fixed, **chosen})
            resolved[identity] = (config, factors)
    return tuple(Trial(identity, seed, config.model_copy(update={"seed": seed}), factors)
                 for identity, (config, factors) in resolved.items() for seed in seeds)


def _meaningful(key: str, values: dict, ties: dict) -> bool:
    """Whether `key` changes what a cell with these settings trains."""
    if key in IGNORED_BY_RULE[values["rule"]]:
        return False
    condition = ties.get(key, {})
    return all(other not in IGNORED_BY_RULE[values["rule"]] and values[other] in allowed
               for other, allowed in condition.items())


def _resolve(source: _Source, fixed: dict, chosen: dict, varied: tuple, ties: dict) -> tuple[TrainConfig, dict]:
    """The config of one cell (seed 0) and its factors, keys without meaning reset to defaults."""
    given = {**fixed, **chosen}
    values = {key: (given[key].value if key in given else _default(key)) for key in SETTINGS}
    meaningless = [key for key in SETTINGS if not _meaningful(key, values, ties)]
    for key in meaningless:
        given.pop(key, None)
    try:
        config = TrainConfig(**{key: g.value for key, g in given.items()})
    except pydantic.ValidationError as err:
        raise _cell_error(source, err.errors()[0], given) from None
    flat = config.flat()
    factors = {key: flat[key] for key in varied if key not in meaningless}
    return config, factors


def _cell_error(source: _Source, error: dict, given: dict) -> SpecError:
    """A settings combination TrainConfig rejects, blamed on the line that set a key it names."""
    message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
    named = [key for key in given if re.search(rf"\b{key}\b", message)]
    culprit = given[named[0]] if named else next(iter(given.values()), None)
    path = culprit.path if culprit else ("settings",)
    return source.error(path, message)


@cache
def _model_names() -> tuple[str, ...]:
    from .models import backbone_names

    return backbone_names()


@cache
def _num_layers(model: str, dataset: str, width: float) -> int:
    """Layer count of a backbone, built on the meta device (no memory, no init cost)."""
    import torch

    from .models import build_backbone

    shape = DATASET_SHAPES[dataset]
    with torch.device("meta"):
        backbone = build_backbone(model, in_channels=shape.channels, num_classes=shape.num_classes,
                                  image_size=shape.image_size, width=width)
    return len(backbone.layers)


def plan_of(config: TrainConfig):
    """The auxiliary plan `config` trains with (ablate.plan.AuxPlan)."""
    return make_plan(_num_layers(config.model, config.dataset, config.width), rule=config.rule,
                     aux_depth=config.aux_depth, selection=config.selection, decay=config.decay,
                     decay_coeff=config.decay_coeff, head_layers=config.head_layers, seed=config.seed)


def _check_cell(source: _Source, config: TrainConfig, given: dict) -> None:
    """Backbone, data split and plan of one cell: what the trainer would reject later."""
    from .data.base import DataError
    from .data.split import validation_count
    from .models import BackboneError

    def blame(*keys: str) -> Location:
        return next((given[k].path for k in keys if k in given), ("settings",))

    try:
        num_layers = _num_layers(config.model, config.dataset, config.width)
    except BackboneError as err:
        raise source.error(blame("model", "dataset", "width"), f"{err} (dataset {config.dataset})") from None
    if config.head_layers is not None and config.rule != "bp" and config.head_layers > num_layers:
        raise source.error(blame("head_layers"), f"head_layers {config.head_layers} is more than the "
                                                 f"{num_layers} layers of {config.model}; choose 1..{num_layers}")
    try:
        plan_of(config)
    except PlanError as err:
        raise source.error(blame("head_layers", "aux_depth", "rule", "model"), str(err)) from None

    train_size = DATASET_SHAPES[config.dataset].train_size
    if config.dataset == "imagefolder" and config.data_root is None:
        raise source.error(blame("dataset"), "imagefolder reads your own folders: set data_root (in settings, "
                                             "or override it when running)")
    if train_size is None:
        return
    # val_size is a fraction below 1 and a count from 1 on (TrainConfig stores both as float)
    val_size = int(config.val_size) if config.val_size >= 1 and config.val_size.is_integer() else config.val_size
    try:
        held_out = validation_count(train_size, val_size)
    except DataError as err:
        raise source.error(blame("val_size"), f"{err} ({config.dataset})") from None
    if config.train_subset is not None and config.train_subset > train_size - held_out:
        raise source.error(blame("train_subset"), f"train_subset {config.train_subset} exceeds the "
                                                  f"{train_size - held_out} training examples of {config.dataset} "
                                                  f"left after holding out {held_out} for validation")


def _check_grid_has_effect(source: _Source, grid: dict, trials: tuple[Trial, ...]) -> None:
    for key in grid:
        if not any(key in trial.factors for trial in trials):
            raise source.error(("grid", key), f"{key} has no effect in any cell (every cell's rule ignores "
                                              "it or its tie never holds); remove it from the grid")


def _reference(source: _Source, report, spec: StudySpec) -> dict | None:
    if report is None:
        return None
    report = _mapping(source, report, ("report",), "report")
    _check_keys(source, report, ("report",), REPORT_KEYS, "report")
    if report.get("reference") is None:
        return None
    path = ("report", "reference")
    reference = _mapping(source, report["reference"], path, "the reference cell")
    if spec.search is not None:
        raise source.error(path, "a search has no fixed cells to compare with; remove the reference")
    wanted = {}
    for key, value in reference.items():
        if key not in spec.factors:
            raise source.error(path + (key,), "the reference names cells by their varied keys"
                               + _did_you_mean(key, spec.factors))
        wanted[key] = _field_value(source, key, value, path + (key,))
        if isinstance(wanted[key], tuple):
            wanted[key] = list(wanted[key])
    if not any(all(factors.get(k) == v for k, v in wanted.items()) for _, factors in spec.cells()):
        raise source.error(path, f"no cell has {_show(wanted)}")
    return wanted


# --------------------------------------------------------------------------------------
# Search studies


def _search(source: _Source, search, fixed: dict) -> SearchSpace:
    path = ("search",)
    search = _mapping(source, search, path, "search")
    _check_keys(source, search, path, SEARCH_KEYS, "search")

    sampler = search.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise source.error(path + ("sampler",), _unknown_choice("sampler", sampler, SAMPLERS))
    objectives = _objectives(source, search.get("objectives", ["best_val_acc"]), fixed)
    if sampler == "nsga2" and len(objectives) < 2:
        raise source.error(path + ("sampler",), "nsga2 is for several objectives; use tpe for one, or add an "
                                                "objective such as peak_memory_bytes_max")
    pruner = search.get("pruner")
    if pruner is not None and pruner not in PRUNERS:
        raise source.error(path + ("pruner",), _unknown_choice("pruner", pruner, PRUNERS))
    if pruner is not None and len(objectives) > 1:
        raise source.error(path + ("pruner",), "Optuna cannot prune a search with several objectives; "
                                               "set pruner: null")
    n_trials = search.get("n_trials")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise source.error(path + ("n_trials",), f"the trial budget is an integer >= 1, got {_show(n_trials)}")
    if "space" not in search:
        raise source.error(path, "a search needs a 'space:' of settings to sample")
    params = _space(source, search["space"], fixed)
    return SearchSpace(sampler=sampler, objectives=objectives, params=params, n_trials=n_trials, pruner=pruner)


def _objectives(source: _Source, objectives, fixed: dict) -> tuple[tuple[str, str], ...]:
    path = ("search", "objectives")
    if not isinstance(objectives, list) or not objectives:
        raise source.error(path, f"expected a list of metrics such as [best_val_acc], got {_show(objectives)}")
    parsed = []
    for index, objective in enumerate(objectives):
        at = path + (index,)
        if isinstance(objective, dict):
            _check_keys(source, objective, at, OBJECTIVE_KEYS, "objective")
            metric, direction = objective.get("metric"), objective.get("direction")
        else:
            metric, direction = objective, None
        if isinstance(metric, str) and "test" in metric:
            raise source.error(at, f"{metric} is a test metric; selecting on it leaks the test set. "
                                   "Use best_val_acc")
        if metric not in OBJECTIVES:
            raise source.error(at, _unknown_choice("metric", metric, OBJECTIVES))
        if direction is not None and direction != OBJECTIVES[metric]:
            raise source.error(at, f"{metric} is to {OBJECTIVES[metric]}, not {_show(direction)}; drop 'direction'")
        if metric in (m for m, _ in parsed):
            raise source.error(at, f"{metric} is listed twice")
        val_size = fixed["val_size"].value if "val_size" in fixed else _default("val_size")
        if "val" in metric and val_size == 0:
            raise source.error(at, f"{metric} needs a validation split, but val_size is 0; set val_size "
                                   "in settings")
        parsed.append((metric, OBJECTIVES[metric]))
    return tuple(parsed)


def _space(source: _Source, space, fixed: dict) -> dict:
    path = ("search", "space")
    space = _mapping(source, space, path, "the search space")
    if not space:
        raise source.error(path, "the space is empty; give settings to sample such as 'lr: {low: 0.01, high: 1.0}'")
    rule = fixed["rule"].value if "rule" in fixed else _default("rule")
    params = {}
    for key, spec in space.items():
        at = path + (key,)
        _check_factor_name(source, key, at)
        if key in fixed:
            raise source.error(at, f"{key} is both searched and fixed (line {source.line(fixed[key].path)}); "
                                   "remove one")
        if "rule" not in space and key in IGNORED_BY_RULE[rule]:
            raise source.error(at, f"rule {rule} ignores {key}; searching it would train the same network")
        spec = _mapping(source, spec, at, f"the space of {key}")
        params[key] = _choices(source, key, spec, at) if "choices" in spec else _range(source, key, spec, at)
    for key, param in params.items():  # every extreme of the space must be trainable
        values = param["choices"] if "choices" in param else [param["low"], param["high"]]
        names = ["choices"] * len(values) if "choices" in param else ["low", "high"]
        for value, name in zip(values, names):
            where = path + (key, name)
            chosen = {key: _Given(value, where)}
            config, _ = _resolve(source, fixed, chosen, (key,), {})
            _check_cell(source, config, {**fixed, **chosen})
    return params


def _choices(source: _Source, key: str, spec: dict, path: Location) -> dict:
    extra = [k for k in spec if k != "choices"]
    if extra:
        raise source.error(path + (extra[0],), "give either 'choices' or a range (low, high, log, step), not both")
    choices = spec["choices"]
    if not isinstance(choices, list) or not choices:
        raise source.error(path + ("choices",), f"expected a non-empty list, got {_show(choices)}")
    normalised = []
    for index, choice in enumerate(choices):
        value = _field_value(source, key, choice, path + ("choices", index))
        if isinstance(value, tuple):
            raise source.error(path + ("choices", index), f"{key} takes a list; Optuna samples only single values")
        if value in normalised:
            raise source.error(path + ("choices", index), f"{_show(choice)} is listed twice")
        normalised.append(value)
    return {"kind": "categorical", "choices": normalised}


def _range(source: _Source, key: str, spec: dict, path: Location) -> dict:
    _check_keys(source, spec, path, RANGE_KEYS + ("choices",), "range")
    annotation = TrainConfig.model_fields[key].annotation
    number = next((t for t in (int, float) if annotation in (t, t | None)), None)
    if number is None:
        raise source.error(path, f"{key} is not a number; give 'choices: [...]'")
    for bound in ("low", "high"):
        if bound not in spec:
            raise source.error(path, "a range needs 'low' and 'high' (or give 'choices')")
    low, high = (_field_value(source, key, spec[b], path + (b,)) for b in ("low", "high"))
    for bound, value in (("low", low), ("high", high)):
        if value is None:
            raise source.error(path + (bound,), f"expected {'an integer' if number is int else 'a number'}, got null")
    if not low < high:
        raise source.error(path + ("high",), f"high must be above low ({_show(low)}); "
                                             "a single value belongs in settings")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise source.error(path + ("log",), f"expected true or false, got {_show(log)}")
    if log and low <= 0:
        raise source.error(path + ("low",), f"a log range needs low > 0, got {_show(low)}")
    step = spec.get("step")
    if step is not None:
        valid = isinstance(step, int if number is int else (int, float)) and not isinstance(step, bool)
        if not valid or step <= 0:
            raise source.error(path + ("step",), f"expected a positive {'integer' if number is int else 'number'}, "
                                                 f"got {_show(step)}")
        if log and not (number is int and step == 1):
            raise source.error(path + ("step",), "Optuna cannot combine log with a step; drop one")
    return {"kind": number.__name__, "low": low, "high": high, "log": log,
            "step": number(step) if step is not None else None}


# --------------------------------------------------------------------------------------
# The dry run: what `ablate run --dry-run` prints


def render_dry_run(spec: StudySpec) -> str:
    """Every cell with its factors, seeds, id and auxiliary plan, and where results go."""
    lines = [f"study {spec.name} ({spec.path})"]
    storage = spec.storage or f"default: SQLite in {spec.directory}"
    tracking = spec.tracking_uri or f"default: sqlite:///{spec.directory / 'mlflow.db'}"
    lines.append(f"  optuna storage: {storage}")
    lines.append(f"  mlflow: {tracking}, experiment {spec.experiment!r}")
    if spec.fixed:
        lines.append("  fixed: " + " ".join(f"{k}={_plain(v)}" for k, v in spec.fixed.items()))
    if spec.search is not None:
        return "\n".join(lines + _render_search(spec))
    cells = spec.cells()
    lines.append(f"  {_count(len(cells), 'cell')} × {_count(len(spec.seeds), 'seed')} = "
                 f"{_count(len(spec.trials), 'trial')}; "
                 f"seeds {', '.join(map(str, spec.seeds))}")
    if spec.reference:
        lines.append("  reference: " + " ".join(f"{k}={_plain(v)}" for k, v in spec.reference.items()))
    configs = {trial.cell_id: trial.config for trial in spec.trials}
    for identity, factors in cells:
        described = " ".join(f"{k}={_plain(v)}" for k, v in factors.items()) or "(settings only)"
        lines.append(f"cell {identity}  {described}")
        lines.append(f"  plan: {describe_plan(configs[identity])}")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _render_search(spec: StudySpec) -> list[str]:
    search = spec.search
    objectives = ", ".join(f"{metric} ({direction})" for metric, direction in search.objectives)
    lines = [f"  search: {search.sampler} sampler, {search.n_trials} trials, seed {spec.seeds[0]}, "
             f"pruner {search.pruner or 'none'}",
             f"  objectives: {objectives}"]
    for key, param in search.params.items():
        if param["kind"] == "categorical":
            lines.append(f"  {key} in {_plain(param['choices'])}")
        else:
            extras = [e for e, on in (("log", param["log"]), (f"step {param['step']}", param["step"])) if on]
            note = f" ({', '.join(extras)})" if extras else ""
            lines.append(f"  {key} in [{param['low']}, {param['high']}]{note}")
    base = spec.trial({}, spec.seeds[0])
    lines.append(f"  plan of the fixed settings: {describe_plan(base.config)}")
    return lines


def describe_plan(config: TrainConfig) -> str:
    """One line: layers, local layers and their auxiliary depths, the end-to-end head group."""
    plan = plan_of(config)
    heads = plan.head_layers
    head = f"layers {heads[0]}-{heads[-1]} end-to-end" if len(heads) > 1 else f"layer {heads[0]} end-to-end"
    if config.rule == "bp":
        return f"{config.model}, {plan.num_layers} layers, all end-to-end (bp)"
    if config.rule == "auglocal":
        depths = " ".join(str(p.aux_depth) for p in plan.local)
        return f"{config.model}, {plan.num_layers} layers: {plan.num_local} local, aux depths {depths}; {head}"
    return f"{config.model}, {plan.num_layers} layers: {plan.num_local} local with {config.rule} heads; {head}"
