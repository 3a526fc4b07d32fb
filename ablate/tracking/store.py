"""One MLflow tracking store as ablate uses it: one client per store per process
(`store_for`), and the calls ablate makes on it, each saying whether it rides out an
outage of the store (ablate.outage) and why running it twice would be harmless.

Values go in as plain dicts: params and tags as text (passwords masked), metrics as
numbers (a list becomes key_00, key_01, ...; None is skipped) in the units a person reads
(ablate.metrics.shown: accuracies in percent as `*_acc_pct`, memory in MiB as `*_mib`).
MLflow's `log_batch` splits a batch into what its API takes.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..metrics import LAYER, shown
from ..outage import Patience
from ..sqlite import use_write_ahead_log
from ..urls import mask_url, sqlite_path
from . import names

# MLflow narrates every store migration and system-metrics monitor start at INFO; a
# study's own progress display says what matters.
logging.getLogger("mlflow").setLevel(logging.WARNING)


@functools.cache
def store_for(tracking_uri: str) -> TrackingStore:
    """The process's one TrackingStore of `tracking_uri`."""
    return TrackingStore(tracking_uri)


def _new_client(tracking_uri: str) -> MlflowClient:
    """For SQLite, the first client creates the database, and MLflow's schema migrations
    break when two processes run them at once, so they take turns."""
    # MLflow prints a run URL (credentials included) to stdout when a REST-store run ends
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # downloads of one checkpoint
    # MLflow retries a failed HTTP request for about 4 minutes by itself; a few seconds
    # of that, then ablate's patience (ABLATE_OUTAGE_S), so the two do not multiply
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    db = sqlite_path(tracking_uri)
    if db is None:
        return MlflowClient(tracking_uri)
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.parent / f".{db.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            use_write_ahead_log(db)
            return MlflowClient(tracking_uri)  # it opens (and migrates) the store now
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class TrackingStore:
    def __init__(self, tracking_uri: str):
        self.uri = tracking_uri
        self.patience = Patience(f"the MLflow tracking store {tracking_uri}")
        self._client: MlflowClient | None = None

    def __repr__(self) -> str:
        return f"TrackingStore({mask_url(self.uri)!r})"

    @property
    def client(self) -> MlflowClient:
        """The MlflowClient itself, made on first use (so that building a store creates nothing)."""
        if self._client is None:
            self._client = self.patience.call(_new_client, self.uri)
        return self._client

    # ---------------------------------------------------------------- reads: always safe to repeat
    def experiment(self, name: str):
        return self.patience.call(self.client.get_experiment_by_name, name)

    def search(self, experiment_id: str, filter_string: str, *, view: int = ViewType.ACTIVE_ONLY,
               order_by: list[str] | None = None) -> list:
        """Every run matching `filter_string`, all pages."""
        runs, token = [], None
        while True:
            page = self.patience.call(self.client.search_runs, [experiment_id], filter_string, run_view_type=view,
                                      max_results=1000, order_by=order_by, page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                return runs

    def run(self, run_id: str):
        return self.patience.call(self.client.get_run, run_id)

    def metric_history(self, run_id: str, key: str) -> list:
        return self.patience.call(self.client.get_metric_history, run_id, key)

    def download(self, run_id: str, path: str, destination: str | Path) -> Path:
        Path(destination).mkdir(parents=True, exist_ok=True)
        return Path(self.patience.call(self.client.download_artifacts, run_id, path, str(destination)))

    # ---------------------------------------------------------------- writes
    def create_experiment(self, name: str, artifact_location: str | None) -> str:
        """The experiment's id. Retried: a retry after a first try that got through finds
        RESOURCE_ALREADY_EXISTS, which (like another process's experiment) is read back."""
        def create_or_read() -> str:
            try:
                return self.client.create_experiment(name, artifact_location=artifact_location)
            except MlflowException as err:
                if err.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                return self.client.get_experiment_by_name(name).experiment_id
        return self.patience.call(create_or_read)

    def set_experiment_tags(self, experiment_id: str, tags: dict) -> None:
        """Retried: setting a tag to the same value again changes nothing."""
        for key, value in _text(tags).items():
            self.patience.call(self.client.set_experiment_tag, experiment_id, key, value)

    def create_run(self, experiment_id: str, run_name: str, tags: dict) -> str:
        """A new run's id. Creating is not repeatable, so each try first looks for the run
        an earlier try of this call made (found by a token tag) and creates one only if
        there is none."""
        token = uuid.uuid4().hex
        text_tags = _text({**tags, names.REQUEST: token})

        def find_or_create() -> str:
            found = self.client.search_runs([experiment_id], f"tags.`{names.REQUEST}` = '{token}'",
                                            run_view_type=ViewType.ALL, max_results=1)
            if found:
                return found[0].info.run_id
            return self.client.create_run(experiment_id, run_name=run_name, tags=text_tags).info.run_id
        return self.patience.call(find_or_create)

    def log(self, run_id: str, *, metrics: dict | None = None, step: int = 0, params: dict | None = None,
            tags: dict | None = None) -> None:
        """Retried: metrics carry the timestamp taken here, so a repeat is an exact duplicate,
        which MLflow drops; params and tags are set to the same values again."""
        timestamp = int(time.time() * 1000)
        batch = {"metrics": _metrics(metrics or {}, step, timestamp),
                 "params": [Param(k, v) for k, v in _params(params or {}).items()],
                 "tags": [RunTag(k, v) for k, v in _text(tags or {}).items()]}
        if any(batch.values()):
            self.patience.call(self.client.log_batch, run_id, **batch)

    def log_series(self, run_id: str, series: dict[str, Iterable[float]]) -> None:
        """Each per-layer series as one metric `<name>_by_layer` whose step is the layer's
        index (not a training step; the run's tag ablate.step_is.<name> says so). Retried as `log`."""
        timestamp = int(time.time() * 1000)
        metrics = [Metric(shown(key, 0.0)[0] + LAYER, shown(key, float(value))[1], timestamp, step)
                   for key, values in series.items() for step, value in enumerate(values)]
        tags = [RunTag(f"ablate.step_is.{shown(key, 0.0)[0] + LAYER}", "layer index (0 = first layer)")
                for key in series]
        if metrics:
            self.patience.call(self.client.log_batch, run_id, metrics=metrics, tags=tags)

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        """Retried: a repeat writes the same file over itself."""
        self.patience.call(self.client.log_artifact, run_id, str(path), artifact_path)

    def set_status(self, run_id: str, status: str) -> None:
        """RUNNING, or an end status (FINISHED, FAILED, KILLED). Retried: the same status twice is one."""
        if status == "RUNNING":
            self.patience.call(self.client.update_run, run_id, status="RUNNING")
        else:
            self.patience.call(self.client.set_terminated, run_id, status)

    def delete_run(self, run_id: str) -> None:
        """Retried: deleting a deleted run changes nothing."""
        self.patience.call(self.client.delete_run, run_id)


def _text(values: dict) -> dict[str, str]:
    return {k: mask_url(str(v)) for k, v in values.items()}


def _params(values: dict) -> dict[str, str]:
    return {k: json.dumps(list(v)) if isinstance(v, (list, tuple)) else mask_url(str(v)) for k, v in values.items()}


def _metrics(values: dict, step: int, timestamp: int) -> list[Metric]:
    out = []
    for key, value in values.items():
        if isinstance(value, (list, tuple)):
            out += [Metric(*shown(f"{key}_{i:02d}", float(v)), timestamp, step)
                    for i, v in enumerate(value) if v is not None]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(Metric(*shown(key, float(value)), timestamp, step))
    return out
