"""Writing a study to MLflow: its experiment, its one parent run, a summary run per cell
(ablate.tracking.study_run) with a child run per trial under it, and ending runs from
outside (those a killed worker left RUNNING). Every call names its run id (never MLflow's global "active run"), so trials that follow each other in one
process cannot write into each other's runs."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..urls import mask_url, sqlite_path
from . import names
from .callback import TrialRun, end_run
from .provenance import provenance_tags
from .store import TrackingStore, store_for
from .study_run import EXPERIMENT_KIND, cell_name, cell_tags, describe_study, report_note, trial_params, update_cell
from .uris import TrackingError, default_artifact_location

_PARENT_SETTLE_S = 2.0  # longer than a run-creating request takes to commit on a tracking server


def run_name(factors: dict, seed: int, cell_id: str = "") -> str:
    """A trial's short name, its distinguishing factors first: 'auglocal d=3 · s1'."""
    return f"{cell_name(factors, cell_id) if factors or cell_id else 'settings'} · s{seed}"


class Tracker:
    """Finds or creates a study's experiment and parent run, and starts its trial runs.

    Nothing touches the store until a method needs it, so building a Tracker for a
    study that is only validated creates nothing.
    """

    def __init__(self, tracking_uri: str, experiment: str, *, artifact_location: str | None = None,
                 system_metrics: bool = True, system_metrics_interval_s: float = 10.0):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_location = artifact_location or default_artifact_location(tracking_uri)
        self.system_metrics = system_metrics
        self.system_metrics_interval_s = system_metrics_interval_s
        if system_metrics and importlib.util.find_spec("psutil") is None:
            raise TrackingError("MLflow system metrics need the psutil package: pip install psutil")
        self.store: TrackingStore = store_for(tracking_uri)
        self._experiment_id: str | None = None

    def __repr__(self) -> str:
        return f"Tracker({mask_url(self.tracking_uri)!r}, {self.experiment!r})"

    @property
    def client(self):
        """The raw MlflowClient (for reading runs in notebooks and tests)."""
        return self.store.client

    @property
    def experiment_id(self) -> str:
        """The study's experiment, created on first use (by whichever process comes first)."""
        if self._experiment_id is None:
            found = self.store.experiment(self.experiment)
            if found is None:
                self._experiment_id = self.store.create_experiment(self.experiment, self.artifact_location)
                self.store.set_experiment_tags(self._experiment_id, EXPERIMENT_KIND)
                return self._experiment_id
            if found.lifecycle_stage == "deleted":
                raise TrackingError(
                    f"MLflow experiment {self.experiment!r} (id {found.experiment_id}) was deleted; restore it "
                    f"with `mlflow experiments restore --experiment-id {found.experiment_id}` or choose another "
                    "experiment name")
            self._experiment_id = found.experiment_id
            if found.tags.get("mlflow.experimentKind") is None:  # a store made before the kind was set
                self.store.set_experiment_tags(self._experiment_id, EXPERIMENT_KIND)
        return self._experiment_id

    # ---------------------------------------------------------------- parent run
    def _runs(self, study_name: str, role: str, cell_id: str | None = None) -> list:
        where = f"tags.`{names.ROLE}` = '{role}'" + (f" and tags.`{names.CELL_ID}` = '{cell_id}'" if cell_id else "")
        mine = [r for r in self.store.search(self.experiment_id, where) if r.data.tags.get(names.STUDY) == study_name]
        return sorted(mine, key=lambda r: (r.info.start_time, r.info.run_id))

    def _one_run(self, study_name: str, role: str, name: str, tags: dict, cell_id: str | None = None) -> str:
        """The oldest run of `role` (and `cell_id`), created if there is none: see `parent_run_id`."""
        existing = self._runs(study_name, role, cell_id)
        if existing:
            return existing[0].info.run_id
        mine = self.store.create_run(self.experiment_id, name, tags)
        # a run becomes visible when its request commits, after the start time its client
        # gave it: wait out that gap, so that a concurrent creator with an older run is seen
        time.sleep(0.0 if sqlite_path(self.tracking_uri) else _PARENT_SETTLE_S)
        keeper = self._runs(study_name, role, cell_id)[0].info.run_id
        if keeper != mine:
            self.store.delete_run(mine)
        return keeper

    def parent_run_id(self, study_name: str, tags: dict | None = None) -> str:
        """The study's parent run, created if there is none yet.

        MLflow cannot create a run only-if-absent, so two processes starting the same
        study may both create one. Each creator searches again afterwards: the oldest
        parent (start time, then run id — an order every process agrees on) is the
        study's, and a creator whose run is not the oldest deletes its own. Processes
        on hosts whose clocks disagree by more than the creation gap could both keep
        theirs; then every later call still returns the oldest.
        """
        return self._one_run(study_name, names.PARENT_ROLE, study_name, {
            **provenance_tags(), **(tags or {}), names.STUDY: study_name, names.ROLE: names.PARENT_ROLE})

    def describe_study(self, parent_id: str, spec) -> None:
        """The experiment's kind and description; the study run's params, note and files."""
        describe_study(self.store, self.experiment_id, parent_id, spec)

    def cell_run_id(self, parent_id: str, trial) -> str:
        """The summary run of a trial's cell, nested under the study run; created if missing."""
        study = self.store.run(parent_id).data.tags[names.STUDY]
        run_id = self._one_run(study, names.CELL_ROLE, cell_name(trial.factors, trial.cell_id),
                               cell_tags(parent_id, study, trial), trial.cell_id)
        self.store.log(run_id, params=trial.factors)  # the same values each time: harmless to repeat
        return run_id

    def set_parent_status(self, parent_id: str, status: str) -> None:
        """RUNNING while a study trains; FINISHED (or FAILED/KILLED) when it stops."""
        self.store.set_status(parent_id, status)

    def log_parent_artifacts(self, parent_id: str, files: Iterable[str | Path], artifact_path: str = "report") -> None:
        """The report's files; its table (report.md) also becomes the study run's note."""
        for path in files:
            self.store.log_artifact(parent_id, path, artifact_path)
            if Path(path).name == "report.md":
                report_note(self.store, parent_id, Path(path))

    # ---------------------------------------------------------------- trial runs
    def start_trial(self, parent_id: str, trial, optuna_number: int | None, device: str,
                    varied: tuple = ()) -> TrialRun:
        """A run for one trial (cell × seed) nested under its cell's summary run, RUNNING
        until `TrialRun.finish` (which updates the cell's summary). Its params are the
        settings that shape its cell (`varied`: the study's factors, to leave out those
        meaningless in this cell). Tagged with the host and pid of the calling process, so
        that whoever finds it RUNNING later can tell whether its worker still lives."""
        cell_run = self.cell_run_id(parent_id, trial)
        params, exec_tags = trial_params(trial, varied)
        tags = {
            names.PARENT: cell_run,
            names.STUDY_RUN: parent_id,
            names.STUDY: self.store.run(parent_id).data.tags[names.STUDY],
            names.ROLE: names.TRIAL_ROLE,
            names.CELL_ID: trial.cell_id,
            names.SEED: trial.seed,
            names.TRIAL_KEY: trial.key,
            names.CELL_NAME: cell_name(trial.factors, trial.cell_id),
            names.FACTORS: json.dumps(trial.factors, default=str),
            "ablate.device": device,
            "ablate.host": socket.gethostname(),
            "ablate.pid": os.getpid(),
            names.STATUS: "running",
            **exec_tags,
            **provenance_tags(),
        }
        if optuna_number is not None:
            tags["ablate.optuna_trial"] = optuna_number
        run_id = self.store.create_run(self.experiment_id, run_name(trial.factors, trial.seed, trial.cell_id), tags)
        self.store.log(run_id, params=params)
        study = tags[names.STUDY]
        return TrialRun(self, run_id, trial,
                        on_end=lambda: update_cell(self.store, self.experiment_id, cell_run, study, trial.cell_id))

    def running_trial_runs(self, study_name: str) -> list[dict]:
        """Trial runs still marked RUNNING: {run_id, trial_key, host, pid, start_time}."""
        runs = self.store.search(self.experiment_id,
                                 f"tags.`{names.ROLE}` = '{names.TRIAL_ROLE}' and attributes.status = 'RUNNING'")
        return [{"run_id": r.info.run_id, "trial_key": r.data.tags.get(names.TRIAL_KEY),
                 "host": r.data.tags.get("ablate.host"), "pid": int(r.data.tags.get("ablate.pid", -1)),
                 "start_time": r.info.start_time}
                for r in runs if r.data.tags.get(names.STUDY) == study_name]

    def terminate_run(self, run_id: str, status: str = "killed", reason: str = "") -> None:
        """End a run from outside it, e.g. one left RUNNING by a killed worker."""
        end_run(self.store, run_id, status, reason)

    def mark_stale_runs(self, study_name: str, is_alive: Callable[[str, str], bool]) -> list[str]:
        """End, as killed, every RUNNING trial run whose worker is gone
        (`is_alive(trial_key, run_id)` is False); returns their run ids."""
        ended = []
        for run in self.running_trial_runs(study_name):
            if not is_alive(run["trial_key"], run["run_id"]):
                self.terminate_run(run["run_id"], "killed",
                                   "the process training this trial stopped before the trial ended")
                ended.append(run["run_id"])
        return ended
