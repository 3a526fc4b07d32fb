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
rule ignores (its RuleSpec's `ignores`: end-to-end back-propagation ignores the auxiliary
plan's settings and head_layers, the fixed-head baselines the plan's settings) is left out
of that cell and takes its default. A tied factor whose condition fails is left out the same way. Cells that end up
with the same resolved settings are collapsed, so `rule: [bp, auglocal] × aux_depth: [1, 3]`
is three cells, not four. Cells that train the same networks from the same seeds although
their settings differ (every depth decay at d = 1; τ = 0.5 at d = 2, where rounding keeps
every depth) are aliases: the first such cell trains, the others share its trials, and the
dry run, `ablate status` and the report say so.

A cell id is the first 12 hex digits of the SHA-256 of the cell's resolved settings as
canonical JSON, without the seed and without the settings that only say how to run
(EXECUTION_ONLY): a study keeps its ids when it moves to another machine or data path.

Every mistake raises SpecError, one line that names the file, the line and the key:
"studies/x.yaml:12: key 'aux_dpth': unknown setting; did you mean 'aux_depth'?".
Loading validates every cell (settings, its backbone, its auxiliary plan) and writes nothing.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from ..config import MAX_SEED
from ..urls import storage_problem, tracking_problem
from .analysis import AnalysisSettings, CKASettings, ProbeSettings, read_analysis, reference_trials
from .cells import CellEntry, Trial, cell_id, plan_of
from .grid import MAX_TRIALS, expand, read_cells, read_grid, read_ties
from .runnable import check_runnable
from .search import OBJECTIVES, SearchSpace, read_search, searched_keys
from .settings import EXECUTION_ONLY, SETTINGS, field_value, ignored_by, read_overrides, read_settings
from .study_spec import StudySpec
from .wording import did_you_mean, kind_of, show
from .yaml_lines import Location, Source, SpecError, parse_value, read_with_lines

__all__ = [
    "EXECUTION_ONLY", "OBJECTIVES", "SETTINGS", "AnalysisSettings", "CellEntry", "CKASettings", "ProbeSettings", "SearchSpace",
    "SpecError", "StudySpec", "Trial", "cell_id", "check_runnable", "ignored_by", "load_study", "parse_value", "plan_of",
]

STUDY_KEYS = ("name", "settings", "grid", "tie", "cells", "seeds", "storage", "tracking", "report",
              "search", "analysis")
TRACKING_KEYS = ("uri", "experiment")
REPORT_KEYS = ("reference",)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def load_study(path: str | os.PathLike, overrides: dict | None = None) -> StudySpec:
    """Read, validate and expand a study file. `overrides` ({"epochs": 2, ...}) replace
    fixed settings without editing the file. Raises SpecError; writes nothing."""
    file = os.fspath(path)
    path = Path(file)
    data, source = read_with_lines(path, file)
    if not isinstance(data, dict):
        raise source.error((), f"a study is a mapping of keys ({', '.join(STUDY_KEYS)}), not {kind_of(data)}")
    for key in data:
        if key not in STUDY_KEYS:
            hint = (f"'{key}' is a training setting; put it under 'settings:'" if key in SETTINGS
                    else "unknown study key" + did_you_mean(key, STUDY_KEYS))
            raise source.error((key,), hint)

    name = _name(source, data, path)
    recorded, overrides = dict(overrides or {}), dict(overrides or {})
    seeds = _seeds(source, data.get("seeds", [0]))
    if "seeds" in overrides:  # e.g. --set seeds=[0] to try one seed of a study first
        seeds = _seeds(Source(source.file, {}), overrides.pop("seeds"))
    fixed = read_settings(source, data.get("settings") or {})
    if "search" in data and ("grid" in data or "cells" in data):
        other = "grid" if "grid" in data else "cells"
        raise source.error(("search",), f"a study either searches or lists its cells; remove 'search' or '{other}'")
    grid = read_grid(source, data.get("grid"), fixed)
    ties = read_ties(source, data.get("tie"), grid)
    cells = read_cells(source, data.get("cells"))
    if not grid and not cells and "search" not in data:
        raise source.error((), "the study has no cells; add 'grid:', 'cells:' or 'search:'")
    varied = tuple(dict.fromkeys([*grid, *(k for cell in cells for k in cell)]))
    fixed.update(read_overrides(source, overrides, varied + searched_keys(data.get("search"))))

    search = None
    trials: tuple[Trial, ...] = ()
    layout: tuple[CellEntry, ...] = ()
    if "search" in data:
        search = read_search(source, data["search"], fixed)
        if len(seeds) != 1:
            raise source.error(("seeds",), "a search trains each sampled point once, with one seed; "
                                           "give a single seed such as [0]")
        varied = tuple(search.params)
    else:
        trials, layout = expand(source, fixed, grid, ties, cells, varied, seeds)
    tracking = _tracking(source, data.get("tracking"))
    analysis = read_analysis(source, data.get("analysis"))
    if analysis is not None and analysis.cka is not None and search is not None:
        raise source.error(("analysis", "cka"), "a search has no fixed cells to name a CKA reference by; "
                                                "remove 'cka' (probes work) or list the cells")
    references, added = reference_trials(source, analysis, fixed, trials, varied, ties)
    trials = added + trials  # reference cells the grid does not list train first
    added_cells = {t.cell_id: CellEntry(t.cell_id, t.factors, t.cell_id) for t in added}
    layout = tuple(added_cells.values()) + layout
    spec = StudySpec(
        name=name, path=path.resolve(), directory=path.resolve().parent / "runs" / name,
        fixed={k: g.value for k, g in fixed.items()}, factors=varied, seeds=seeds, trials=trials,
        layout=layout, search=search, storage=_url(source, data, ("storage",), storage_problem),
        tracking_uri=tracking.get("uri"), experiment=tracking.get("experiment") or name,
        reference=None, analysis=analysis, references=references,
        added_cells=frozenset(t.cell_id for t in added), overrides=recorded)
    reference = _reference(source, data.get("report"), spec)
    return dataclasses.replace(spec, reference=reference)


def _name(source: Source, data: dict, path: Path) -> str:
    name = data.get("name", path.stem)
    if "name" in data and not isinstance(name, str):
        raise source.error(("name",), f"expected a name, got {show(name)}")
    if not NAME_PATTERN.fullmatch(name):
        where = ("name",) if "name" in data else ()
        raise source.error(where, f"study name {name!r} must be letters, digits, '.', '_' and '-' "
                                  "(it names a folder); set 'name:'")
    return name


def _seeds(source: Source, seeds) -> tuple[int, ...]:
    if not isinstance(seeds, list) or not seeds:
        raise source.error(("seeds",), f"expected a non-empty list of integers such as [0, 1, 2], got {show(seeds)}")
    if len(seeds) > MAX_TRIALS:
        raise source.error(("seeds",), f"{len(seeds):,} seeds is more than {MAX_TRIALS:,} trials, the limit "
                                       "of a study; list fewer")
    seen = set()
    for index, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise source.error(("seeds", index), f"a seed is an integer in 0..2**63-1 (what torch.manual_seed "
                                                 f"takes), got {show(seed)}")
        if seed in seen:
            raise source.error(("seeds", index), f"seed {seed} is listed twice; each seed trains once")
        seen.add(seed)
    return tuple(seeds)


def _optional_text(source: Source, data: dict, path: Location) -> str | None:
    value = data.get(path[-1])
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise source.error(path, f"expected text or null, got {show(value)}")
    return value


def _tracking(source: Source, tracking) -> dict:
    if tracking is None:
        return {}
    tracking = source.mapping(tracking, ("tracking",), "tracking")
    source.check_keys(tracking, ("tracking",), TRACKING_KEYS, "tracking")
    return {"uri": _url(source, tracking, ("tracking", "uri"), tracking_problem),
            "experiment": _optional_text(source, tracking, ("tracking", "experiment"))}


def _url(source: Source, data: dict, path: Location, problem) -> str | None:
    url = _optional_text(source, data, path)
    reason = problem(url) if url is not None else None
    if reason is not None:
        raise source.error(path, reason)
    return url


def _reference(source: Source, report, spec: StudySpec) -> dict | None:
    if report is None:
        return None
    report = source.mapping(report, ("report",), "report")
    source.check_keys(report, ("report",), REPORT_KEYS, "report")
    if report.get("reference") is None:
        return None
    path = ("report", "reference")
    reference = source.mapping(report["reference"], path, "the reference cell")
    if spec.search is not None:
        raise source.error(path, "a search has no fixed cells to compare with; remove the reference")
    wanted = {}
    for key, value in reference.items():
        if key not in spec.factors:
            raise source.error(path + (key,), "the reference names cells by their varied keys"
                               + did_you_mean(key, spec.factors))
        wanted[key] = field_value(source, key, value, path + (key,))
        if isinstance(wanted[key], tuple):
            wanted[key] = list(wanted[key])
    if not any(all(factors.get(k) == v for k, v in wanted.items()) for _, factors in spec.cells()):
        raise source.error(path, f"no cell has {show(wanted)}")
    return wanted
