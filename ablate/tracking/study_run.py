"""What a person sees of a study in MLflow above its trial runs: the experiment's kind and
description, the study run's params, note and files, and one summary run per cell.

    experiment   tag mlflow.experimentKind = custom_model_development (MLflow 3 opens the
                 model-training view, not the GenAI one); its note says what the study varies
    study run    params: the fixed settings; note: the study's purpose (the comment that opens
                 the study file) and, once `ablate report` ran, its table; artifacts: the
                 study file and study/grid.yaml (every cell's id, factors and settings)
    cell run     one per cell, nested under the study run, the cell's trial runs nested under
                 it; params: the cell's factors; metrics: mean, std, n and 95% interval of each
                 headline figure over the cell's finished trials, rewritten as each one ends
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import yaml

from ..config import EXECUTION_ONLY
from ..metrics import COSTS, HEADLINE, inside, shown, spread
from ..rules import RULES
from . import names
from .store import TrackingStore

EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
NOTE = "mlflow.note.content"
COST_NAMES = {s.name for s in COSTS}
# short names of factors in run names; a factor whose values are words shows the word alone
SHORT = {"aux_depth": "d", "decay_coeff": "τ", "width": "w", "head_layers": "h", "batch_size": "bs",
         "train_subset": "n", "warmup_epochs": "warmup", "weight_decay": "wd"}


def cell_name(factors: dict, cell_id: str) -> str:
    """A cell's short name, its distinguishing factors first: 'auglocal d=3'."""
    parts = [v if isinstance(v, str) else f"{SHORT.get(k, k)}={_value(v)}" for k, v in factors.items()]
    return " ".join(parts) or f"cell {cell_id[:6]}"


def trial_name(factors: dict, cell_id: str, seed: int) -> str:
    """A trial run's short name: 'auglocal d=3 · s1'."""
    return f"{cell_name(factors, cell_id)} · s{seed}"


def _value(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(_value, value)) + "]"
    return str(value)


def trial_params(trial, varied: tuple = ()) -> tuple[dict, dict]:
    """(params, tags) of a trial run: params are only the settings that shape its cell (a
    setting its rule ignores, or a varied one that means nothing in this cell, is absent,
    not a default); how it ran (device, workers, ...) goes into tags ablate.exec.<key>."""
    flat = trial.config.flat()
    ignored = RULES[trial.config.rule].ignores | {k for k in varied if k not in trial.factors}
    params = {k: v for k, v in flat.items() if k not in ignored and k not in EXECUTION_ONLY}
    tags = {f"ablate.exec.{k}": v for k, v in flat.items() if k in EXECUTION_ONLY and v is not None}
    return params, tags


# ---------------------------------------------------------------- the experiment and the study run
def purpose(spec) -> str:
    """The comment block that opens the study file (what the study is for), or ''."""
    try:
        lines = Path(spec.path).read_text().splitlines()
    except OSError:
        return ""
    comment = []
    for line in lines:
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    return " ".join(comment).strip()


def experiment_description(spec) -> str:
    """What the study varies, over which seeds, against which reference."""
    lines = [f"**{spec.name}**: {purpose(spec)}".rstrip(": ")]
    if spec.search is not None:
        space = ", ".join(spec.search.params)
        lines.append(f"Searches {space} ({spec.search.sampler}, {spec.search.n_trials} trials).")
    else:
        values = {k: list(dict.fromkeys(_value(t.factors[k]) for t in spec.trials if k in t.factors))
                  for k in spec.factors}
        varies = " × ".join(f"{k} ∈ {{{', '.join(v)}}}" for k, v in values.items()) or "nothing (settings only)"
        lines.append(f"Varies {varies}: {len(spec.cells())} cells × {len(spec.seeds)} seeds.")
    if spec.reference:
        lines.append("Each cell is compared with " + ", ".join(f"{k}={v}" for k, v in spec.reference.items()) + ".")
    lines.append("Runs: the study run, one summary run per cell (mean ± std over seeds: sort by "
                 "`final_test_acc_pct_mean`), each cell's trial runs nested under it.")
    return "\n\n".join(lines)


# views of the runs table the experiment's note links to (MLflow's "share view": an
# experiment tag mlflow.sharedViewState.<key> holding the view as JSON, opened by
# ?viewStateShareKey=<key>)
SHARED_VIEW = "mlflow.sharedViewState."
CELLS_VIEW, TRIALS_VIEW, CHARTS_VIEW = "ablate-cells", "ablate-trials-by-cell", "ablate-trial-charts"


def _metric(name: str) -> str:
    return f"metrics.`{name}`"


def shared_views(spec) -> dict[str, dict]:
    """{key: view}: the cell runs, best final test accuracy first, with their factors and
    summary columns; every trial run grouped by its cell (means over seeds); and the
    trials' headline charts side by side."""
    factors = [f"params.`{k}`" for k in spec.factors]
    acc = shown("final_test_acc", 0.0)[0]
    summary = [_metric(f"{acc}_mean"), _metric(f"{acc}_std"), _metric("n"),
               *(_metric(f"{shown(k, 0.0)[0]}_mean") for k in HEADLINE if k != "final_test_acc")]
    trial_columns = [_metric(shown(k, 0.0)[0]) for k in HEADLINE]
    common = {"orderByAsc": False, "startTime": "ALL", "lifecycleFilter": "Active", "runsHiddenMode": "SHOW_ALL"}
    widths = {column: 190 for column in [*summary, *trial_columns]}
    charts = [_line_chart(i, shown(key, 0.0)[0]) for i, key in enumerate(("val_acc", "test_acc", "train_loss", "lr"))]
    return {
        CELLS_VIEW: {**common, "searchFilter": f"tags.`{names.ROLE}` = '{names.CELL_ROLE}'",
                     "orderByKey": _metric(f"{acc}_mean"), "selectedColumns": [*factors, *summary],
                     "columnWidths": widths},
        TRIALS_VIEW: {**common, "searchFilter": f"tags.`{names.ROLE}` = '{names.TRIAL_ROLE}'",
                      "orderByKey": _metric(acc), "selectedColumns": [*factors, f"tags.`{names.SEED}`", *trial_columns],
                      "columnWidths": widths,
                      "groupBy": {"aggregateFunction": "average",
                                  "groupByKeys": [{"mode": "tag", "groupByData": names.CELL_NAME}]}},
        CHARTS_VIEW: {**common, "searchFilter": f"tags.`{names.ROLE}` = '{names.TRIAL_ROLE}'",
                      "orderByKey": _metric(acc), "compareRunCharts": charts,
                      "compareRunSections": [{"uuid": "ablate-headline", "name": "per epoch", "display": True,
                                              "isReordered": False}]},
    }


def _line_chart(index: int, metric: str) -> dict:
    """One line chart of a metric against the epoch (MLflow's step), for CHARTS_VIEW."""
    return {"uuid": f"ablate-chart-{index}", "type": "LINE", "runsCountToCompare": 10, "metricSectionId": "ablate-headline",
            "deleted": False, "isGenerated": False, "metricKey": metric, "selectedMetricKeys": [metric],
            "scaleType": "linear", "xAxisKey": "metric", "xAxisScaleType": "linear", "selectedXAxisMetricKey": "epoch",
            "lineSmoothness": 0, "range": {"xMin": None, "xMax": None, "yMin": None, "yMax": None},
            "displayPoints": True}


def view_links(experiment_id: str) -> str:
    base = f"#/experiments/{experiment_id}/runs?viewStateShareKey="
    return (f"Views: [cells, best first]({base}{CELLS_VIEW}) (one summary run per cell: mean ± std over seeds) · "
            f"[trials grouped by cell]({base}{TRIALS_VIEW}) · [per-epoch charts]({base}{CHARTS_VIEW}&compareRunsMode=CHART).")


def describe_study(store: TrackingStore, experiment_id: str, parent_id: str, spec) -> None:
    """Experiment kind, description and shared views; the study run's params (fixed
    settings; a setting that changed since the run was made is noted in a tag, MLflow
    params being write-once), note and files."""
    description = experiment_description(spec) + "\n\n" + view_links(experiment_id)
    views = {SHARED_VIEW + key: json.dumps(view) for key, view in shared_views(spec).items()}
    store.set_experiment_tags(experiment_id, {**EXPERIMENT_KIND, NOTE: description, **views})
    logged = store.run(parent_id).data.params
    fixed = {k: v for k, v in spec.fixed.items() if k not in EXECUTION_ONLY}
    params = {k: v for k, v in _text_params(fixed).items() if k not in logged}
    changed = {k: v for k, v in _text_params(fixed).items() if k in logged and logged[k] != v}
    tags = {NOTE: description, "ablate.purpose": purpose(spec)}
    if changed:
        tags["ablate.settings_changed"] = json.dumps(changed)
    store.log(parent_id, params={**params, "seeds": list(spec.seeds)} if "seeds" not in logged else params,
              tags=tags)
    with tempfile.TemporaryDirectory() as tmp:
        grid = Path(tmp) / "grid.yaml"
        grid.write_text(yaml.safe_dump(_grid(spec), sort_keys=False, allow_unicode=True))
        store.log_artifact(parent_id, grid, "study")
    store.log_artifact(parent_id, spec.path, "study")


def _text_params(values: dict) -> dict[str, str]:
    return {k: json.dumps(list(v)) if isinstance(v, (list, tuple)) else str(v) for k, v in values.items()}


def _grid(spec) -> dict:
    configs = {t.cell_id: t.config for t in spec.trials}
    return {"study": spec.name, "seeds": list(spec.seeds),
            "cells": [{"id": cell_id, "name": cell_name(factors, cell_id), "factors": factors,
                       "settings": {k: v for k, v in configs[cell_id].flat().items() if k != "seed"}}
                      for cell_id, factors in spec.cells()]}


def report_note(store: TrackingStore, parent_id: str, report_md: Path) -> None:
    """The study run's note: its purpose, then the report's table (figure links left out:
    the note cannot show them; report.html among the run's files does)."""
    run = store.run(parent_id)
    text = "\n".join(line for line in report_md.read_text().splitlines() if not line.startswith("!["))
    head = run.data.tags.get("ablate.purpose", "")
    store.log(parent_id, tags={NOTE: (f"{head}\n\n" if head else "") + text})


# ---------------------------------------------------------------- cell summary runs
def cell_tags(parent_id: str, study: str, trial) -> dict:
    return {names.PARENT: parent_id, names.STUDY: study, names.ROLE: names.CELL_ROLE, names.CELL_ID: trial.cell_id,
            names.CELL_NAME: cell_name(trial.factors, trial.cell_id),
            names.FACTORS: json.dumps(trial.factors, default=str)}


def update_cell(store: TrackingStore, experiment_id: str, cell_run_id: str, study: str, cell_id: str) -> None:
    """Rewrite a cell run's summary from its cell's finished trial runs (the latest run of
    each seed): for each headline figure, in the unit it is logged in, <name>_mean, _std,
    _ci95_low, _ci95_high, and n; step = n, so the charts show the summary settle."""
    runs = store.search(experiment_id, f"tags.`{names.CELL_ID}` = '{cell_id}' and "
                                       f"tags.`{names.ROLE}` = '{names.TRIAL_ROLE}' and attributes.status = 'FINISHED'")
    latest = {}
    for run in sorted(runs, key=lambda r: r.info.end_time or 0):
        if run.data.tags.get(names.STUDY) == study:
            # in ablate's units whatever the run was logged with (runs of older versions: fractions)
            latest[run.data.tags.get(names.SEED)] = dict(inside(k, v) for k, v in run.data.metrics.items())
    metrics = {"n": len(latest)}
    for key in HEADLINE:
        name = shown(key, 0.0)[0]
        values = [shown(key, m[key])[1] for m in latest.values() if key in m]
        stats = spread(values, percent=name.endswith("_pct"))
        if key in COST_NAMES:  # the same in every seed: a mean and nothing else
            stats = {"mean": stats["mean"]}
        # rounded to what the runs table can show (the trial runs keep every digit)
        metrics.update({f"{name}_{stat}": round(value, 3) for stat, value in stats.items() if value is not None})
    seeds = sorted(int(s) for s in latest if s is not None)
    store.log(cell_run_id, metrics=metrics, step=len(latest),
              tags={"ablate.seeds_done": " ".join(map(str, seeds))})
    store.set_status(cell_run_id, "FINISHED")
