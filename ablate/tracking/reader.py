"""Reading a study's runs back: typed records of trial runs, and metric histories."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from mlflow.exceptions import MlflowException

from ..metrics import inside, layer_series_name, shown
from ..urls import mask_url
from . import names
from .store import store_for
from .uris import TrackingError, store_exists


@dataclass(frozen=True)
class RunRecord:
    """One trial run as ablate reads it: who it is, its params, the last value of each
    metric, its tags and how it ended."""

    run_id: str
    cell_id: str | None
    seed: int | None
    trial_key: str
    factors: dict
    metrics: dict[str, float]
    name: str = ""
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "finished"  # how the trial ended (ablate.status): finished, diverged, failed, killed, running
    mlflow_status: str = "FINISHED"
    start_time: int | None = None
    end_time: int | None = None

    @classmethod
    def of(cls, run) -> RunRecord:
        tags = run.data.tags
        seed = int(tags[names.SEED]) if names.SEED in tags else None
        cell_id = tags.get(names.CELL_ID)
        return cls(
            run_id=run.info.run_id, name=run.info.run_name, cell_id=cell_id, seed=seed,
            trial_key=tags.get(names.TRIAL_KEY) or f"{cell_id}-s{seed}",
            factors=json.loads(tags.get(names.FACTORS, "{}")), params=dict(run.data.params),
            metrics=dict(inside(k, v) for k, v in run.data.metrics.items()),  # ablate's units, old names or new
            tags=dict(tags), status=tags.get(names.STATUS, "finished"),
            mlflow_status=run.info.status, start_time=run.info.start_time, end_time=run.info.end_time)

    @property
    def label(self) -> str:
        return self.name or self.run_id


def finished_trial_runs(tracking_uri: str, experiment: str, study: str | None = None) -> list[RunRecord]:
    """Every FINISHED trial run of the experiment (of `study` only, if given), oldest
    first. A store or experiment that does not exist yet has no runs (and is not created)."""
    if not store_exists(tracking_uri):
        return []
    store = store_for(tracking_uri)
    found = store.experiment(experiment)
    if found is None:
        return []
    runs = store.search(found.experiment_id,
                        f"tags.`{names.ROLE}` = '{names.TRIAL_ROLE}' and attributes.status = 'FINISHED'",
                        order_by=["attributes.start_time ASC"])
    return [RunRecord.of(run) for run in runs if study is None or run.data.tags.get(names.STUDY) == study]


def latest_per_trial(runs: Iterable[RunRecord]) -> dict[str, RunRecord]:
    """{trial key: the run of that trial that ended last} (a retried trial can have several)."""
    latest: dict[str, RunRecord] = {}
    for run in runs:
        key = run.trial_key
        if key not in latest or (run.end_time or 0) >= (latest[key].end_time or 0):
            latest[key] = run
    return latest


def latest_finished(tracking_uri: str, experiment: str, study: str) -> dict[str, RunRecord]:
    """{trial key: its latest finished run} of a study."""
    return latest_per_trial(finished_trial_runs(tracking_uri, experiment, study))


def run_record(tracking_uri: str, run_id: str) -> RunRecord:
    """The record of one run by id, whatever its status."""
    try:
        return RunRecord.of(store_for(tracking_uri).run(run_id))
    except MlflowException:
        raise TrackingError(f"no MLflow run {run_id!r} in {mask_url(tracking_uri)}; check the run id "
                            "(the MLflow UI shows it) or --tracking-uri") from None


def metric_history(tracking_uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of one metric of one run, by step (e.g. test_acc per epoch, probe_acc
    per layer), in ablate's own units (fractions, bytes) whichever name and unit it was
    logged under; a step logged more than once (a resumed trial, a repeated analysis)
    keeps its latest value."""
    store, history, name = store_for(tracking_uri), [], key
    for name in (layer_series_name(key), shown(key, 0.0)[0], key):  # newest naming first
        history = store.metric_history(run_id, name)
        if history:
            break
    latest = {}
    for m in sorted(history, key=lambda m: m.timestamp):
        latest[m.step] = inside(name, m.value)[1]
    return sorted((step, value) for step, value in latest.items() if not math.isnan(value))
