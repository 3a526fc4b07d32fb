"""MLflow: one experiment per study, one parent run per study, one child run per trial.

The only module that imports mlflow. Every call names its run id explicitly through an
`MlflowClient` (never the global "active run"), so several trials in one process over
time cannot write into each other's runs.

Conventions (`ablate.analysis.report` and the notebooks rely on them): the parent run is
named after the study and tagged ablate.study, ablate.role=parent. A trial run is its
child (mlflow.parentRunId), named "<factor=value,...> seed N", tagged ablate.study,
ablate.role=trial, ablate.cell_id, ablate.seed, ablate.trial_key, ablate.factors (JSON),
ablate.optuna_trial, ablate.device, ablate.host, ablate.pid, ablate.git_commit,
ablate.version.<package>, ablate.status (running|finished|diverged|failed|killed) and
ablate.reason; its params are every TrainConfig setting plus num_local_layers; its
metrics are the Trainer's per epoch (step = epoch; lists as key_00, key_01, …), then
final_*, best_*, peak_memory_bytes_max, time_per_epoch_s, epochs_completed and the
network's cost (aux_flops, aux_params, backbone_flops, backbone_params,
train_flops_per_example) at step 0; its artifacts are config.yaml, plan.json,
network.json, result.json and checkpoint/final.pt.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import platform
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import yaml
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .describe import describe_network, training_flops
from .errors import UserInputError
from .outage import Patience, PatientProxy, error_chain
from .train import Callback, Trainer
from .urls import database_unreachable, is_database_server, mask_url

# MLflow narrates every store migration and system-metrics monitor start at INFO; a
# study's own progress display says what matters.
logging.getLogger("mlflow").setLevel(logging.WARNING)

PARENT_ROLE, TRIAL_ROLE = "parent", "trial"
VERSIONED_PACKAGES = ("ablate", "torch", "torchvision", "optuna", "mlflow")
# MLflow's run status for each way a trial can end
MLFLOW_STATUS = {"finished": "FINISHED", "diverged": "FAILED", "failed": "FAILED", "killed": "KILLED"}
_MAX_PARAMS_PER_BATCH = 100  # MLflow's log_batch limits
_MAX_METRICS_PER_BATCH = 1000
_PARENT_SETTLE_S = 2.0  # longer than a run-creating request takes to commit on a tracking server


class TrackingError(UserInputError):
    """The tracking store cannot be used as configured."""


# ------------------------------------------------------------------------------ URIs
def default_tracking_uri(study_dir: str | Path) -> str:
    """The SQLite database beside the study: never MLflow's deprecated file store."""
    return f"sqlite:///{Path(study_dir).resolve() / 'mlflow.db'}"


def resolve_tracking_uri(spec, override: str | None = None) -> str:
    """The command line's URI, else the study file's, else the default beside the study."""
    return override or spec.tracking_uri or default_tracking_uri(spec.directory)


def _sqlite_path(tracking_uri: str) -> Path | None:
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri[len("sqlite:///"):])


def _default_artifact_location(tracking_uri: str) -> str | None:
    """Artifacts of a SQLite store go beside the database; MLflow would otherwise put
    them under ./mlruns of whatever directory the command runs in. Other stores (a
    tracking server) decide themselves."""
    db = _sqlite_path(tracking_uri)
    return None if db is None else (db.parent / "mlartifacts").resolve().as_uri()


def _open_client(tracking_uri: str) -> MlflowClient:
    """An MlflowClient whose every call rides out a short outage of the store (see
    ablate.outage); for SQLite, the first one creates the database, and MLflow's schema
    migrations break when two processes run them at once, so they take turns."""
    # MLflow prints a run URL (credentials included) to stdout when a REST-store run ends
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # downloads of one checkpoint
    # MLflow retries a failed HTTP request for about 4 minutes by itself; a few seconds
    # of that, then ablate's patience (ABLATE_OUTAGE_S), so the two do not multiply
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    patience = Patience(f"the MLflow tracking store {tracking_uri}", is_tracking_outage)
    db = _sqlite_path(tracking_uri)
    if db is None:
        return PatientProxy(MlflowClient(tracking_uri), patience)
    import fcntl

    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.parent / f".{db.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return PatientProxy(MlflowClient(tracking_uri), patience)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def is_tracking_outage(err: BaseException) -> bool:
    """Whether an MLflow call failed because its store could not be reached: no
    connection, no answer, too many 5xx answers from a server (its database is down)."""
    import requests
    import sqlalchemy.exc

    outages = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError,
               ConnectionError, TimeoutError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
               sqlalchemy.exc.DisconnectionError)
    return any(isinstance(cause, outages) for cause in error_chain(err))


def check_tracking_reachable(tracking_uri: str, timeout_s: int = 10) -> None:
    """A TrackingError (one line) unless the tracking store answers: a server gets one
    cheap request with a short timeout and no retries, a database server one connection.
    Creates nothing; a SQLite file is created on first use, so it always answers."""
    if is_database_server(tracking_uri):
        reason = database_unreachable(tracking_uri)
    elif tracking_uri.startswith(("http://", "https://")):
        reason = _server_unreachable(tracking_uri, timeout_s)
    else:
        return
    if reason is not None:
        raise TrackingError(f"cannot reach the MLflow tracking store {mask_url(tracking_uri)}: {reason}; start it "
                            "or fix --tracking-uri, ABLATE_TRACKING_URI or 'tracking: uri:' in the study file")


def _server_unreachable(tracking_uri: str, timeout_s: int) -> str | None:
    import requests

    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)}
    saved = {name: os.environ.get(name) for name in quick}
    os.environ.update(quick)
    try:
        MlflowClient(tracking_uri).search_experiments(max_results=1)
    except MlflowException as err:
        causes = list(error_chain(err))
        if any(isinstance(cause, requests.exceptions.Timeout) for cause in causes):
            return f"no answer within {timeout_s} s"
        refused = [c for c in causes if isinstance(c, OSError) and not isinstance(c, requests.RequestException)]
        text = str(refused[-1]) if refused else err.message
        return mask_url(" ".join(text.split()))[:300]
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return None


# ------------------------------------------------------------------------------ provenance
@functools.cache
def git_commit() -> str:
    """The commit of the ablate source tree ('-dirty' when it has uncommitted changes),
    or 'unknown' outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


@functools.cache
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["torch"] = torch.__version__  # the build tag too, e.g. 2.5.1+cu124
    versions["cuda"] = torch.version.cuda or "none"
    return versions


def _provenance_tags() -> dict[str, str]:
    commit = git_commit()
    tags = {"ablate.git_commit": commit, **{f"ablate.version.{k}": v for k, v in package_versions().items()}}
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit.removesuffix("-dirty")  # shown by the MLflow UI
    return tags


def run_name(factors: dict, seed: int) -> str:
    described = ",".join(f"{k}={v}" for k, v in factors.items())
    return f"{described} seed {seed}" if described else f"seed {seed}"


# ------------------------------------------------------------------------------ values
def _param_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return mask_url(str(value))


def _tags(values: dict) -> list[RunTag]:
    return [RunTag(k, mask_url(str(v))) for k, v in values.items()]


def _metrics(values: dict, step: int, timestamp: int | None = None) -> list[Metric]:
    """MLflow metrics from a flat dict; a list becomes key_00, key_01, …; None is skipped."""
    timestamp = timestamp if timestamp is not None else int(time.time() * 1000)
    out = []
    for key, value in values.items():
        if isinstance(value, (list, tuple)):
            out += [Metric(f"{key}_{i:02d}", float(v), timestamp, step) for i, v in enumerate(value) if v is not None]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(Metric(key, float(value), timestamp, step))
    return out


def _check_status(status: str) -> None:
    if status not in MLFLOW_STATUS:
        raise ValueError(f"unknown trial status {status!r}; expected one of {sorted(MLFLOW_STATUS)}")


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _search_all(client: MlflowClient, experiment_id: str, filter_string: str,
                view: int = ViewType.ACTIVE_ONLY, order_by: list[str] | None = None) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string, run_view_type=view,
                                  max_results=1000, order_by=order_by, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _oldest_first(runs: list) -> list:
    return sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))


# ------------------------------------------------------------------------------ tracker
class Tracker:
    """Finds or creates a study's experiment and parent run, and starts its trial runs.

    Nothing touches the store until a method needs it, so building a Tracker for a
    study that is only validated creates nothing.
    """

    def __init__(self, tracking_uri: str, experiment: str, *, artifact_location: str | None = None,
                 system_metrics: bool = True, system_metrics_interval_s: float = 10.0):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_location = artifact_location or _default_artifact_location(tracking_uri)
        self.system_metrics = system_metrics
        self.system_metrics_interval_s = system_metrics_interval_s
        if system_metrics and importlib.util.find_spec("psutil") is None:
            raise TrackingError("MLflow system metrics need the psutil package: pip install psutil")
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    def __repr__(self) -> str:
        return f"Tracker({mask_url(self.tracking_uri)!r}, {self.experiment!r})"

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = _open_client(self.tracking_uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        """The study's experiment, created on first use (by whichever process comes first)."""
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                try:
                    self._experiment_id = self.client.create_experiment(
                        self.experiment, artifact_location=self.artifact_location)
                    return self._experiment_id
                except MlflowException as err:
                    if err.error_code != "RESOURCE_ALREADY_EXISTS":  # another process made it first
                        raise
                found = self.client.get_experiment_by_name(self.experiment)
            if found.lifecycle_stage == "deleted":
                raise TrackingError(
                    f"MLflow experiment {self.experiment!r} (id {found.experiment_id}) was deleted; restore it "
                    f"with `mlflow experiments restore --experiment-id {found.experiment_id}` or choose another "
                    "experiment name")
            self._experiment_id = found.experiment_id
        return self._experiment_id

    # ---------------------------------------------------------------- parent run
    def _parent_runs(self, study_name: str) -> list:
        runs = _search_all(self.client, self.experiment_id, f"tags.`ablate.role` = '{PARENT_ROLE}'")
        return _oldest_first([r for r in runs if r.data.tags.get("ablate.study") == study_name])

    def parent_run_id(self, study_name: str, tags: dict | None = None) -> str:
        """The study's parent run, created if there is none yet.

        MLflow cannot create a run only-if-absent, so two processes starting the same
        study may both create one. Each creator searches again afterwards: the oldest
        parent (start time, then run id — an order every process agrees on) is the
        study's, and a creator whose run is not the oldest deletes its own. Processes
        on hosts whose clocks disagree by more than the creation gap could both keep
        theirs; then every later call still returns the oldest.
        """
        existing = self._parent_runs(study_name)
        if existing:
            return existing[0].info.run_id
        run = self.client.create_run(self.experiment_id, run_name=study_name, tags={
            **{t.key: t.value for t in _tags({**_provenance_tags(), **(tags or {})})},
            "ablate.study": study_name, "ablate.role": PARENT_ROLE})
        mine = run.info.run_id
        # a run becomes visible when its request commits, after the start time its client
        # gave it: wait out that gap, so that a concurrent creator with an older run is seen
        time.sleep(0.0 if _sqlite_path(self.tracking_uri) else _PARENT_SETTLE_S)
        keeper = self._parent_runs(study_name)[0].info.run_id
        if keeper != mine:
            self.client.delete_run(mine)
        return keeper

    def set_parent_status(self, parent_id: str, status: str) -> None:
        """RUNNING while a study trains; FINISHED (or FAILED/KILLED) when it stops."""
        if status == "RUNNING":
            self.client.update_run(parent_id, status="RUNNING")
        else:
            self.client.set_terminated(parent_id, status)

    def log_parent_artifacts(self, parent_id: str, files: Iterable[str | Path], artifact_path: str = "report") -> None:
        for path in files:
            self.client.log_artifact(parent_id, str(path), artifact_path)

    # ---------------------------------------------------------------- trial runs
    def start_trial(self, parent_id: str, trial, optuna_number: int | None, device: str) -> TrialRun:
        """A child run for one trial (cell × seed), RUNNING until `TrialRun.finish`.
        Tagged with the host and pid of the calling process, so that whoever finds it
        RUNNING later can tell whether its worker still lives."""
        config = trial.config
        tags = {
            "mlflow.parentRunId": parent_id,
            "ablate.study": self.client.get_run(parent_id).data.tags["ablate.study"],
            "ablate.role": TRIAL_ROLE,
            "ablate.cell_id": trial.cell_id,
            "ablate.seed": trial.seed,
            "ablate.trial_key": trial.key,
            "ablate.factors": json.dumps(trial.factors, default=str),
            "ablate.device": device,
            "ablate.host": socket.gethostname(),
            "ablate.pid": os.getpid(),
            "ablate.status": "running",
            **_provenance_tags(),
        }
        if optuna_number is not None:
            tags["ablate.optuna_trial"] = optuna_number
        run = self.client.create_run(self.experiment_id, run_name=run_name(trial.factors, trial.seed),
                                     tags={t.key: t.value for t in _tags(tags)})
        params = [Param(k, _param_value(v)) for k, v in config.flat().items()]
        for chunk in _chunks(params, _MAX_PARAMS_PER_BATCH):
            self.client.log_batch(run.info.run_id, params=chunk)
        return TrialRun(self, run.info.run_id, trial)

    def running_trial_runs(self, study_name: str) -> list[dict]:
        """Trial runs still marked RUNNING: {run_id, trial_key, host, pid, start_time}."""
        runs = _search_all(self.client, self.experiment_id,
                           f"tags.`ablate.role` = '{TRIAL_ROLE}' and attributes.status = 'RUNNING'")
        return [{"run_id": r.info.run_id, "trial_key": r.data.tags.get("ablate.trial_key"),
                 "host": r.data.tags.get("ablate.host"), "pid": int(r.data.tags.get("ablate.pid", -1)),
                 "start_time": r.info.start_time}
                for r in runs if r.data.tags.get("ablate.study") == study_name]

    def terminate_run(self, run_id: str, status: str = "killed", reason: str = "") -> None:
        """End a run from outside it, e.g. one left RUNNING by a killed worker."""
        _check_status(status)
        tags = {"ablate.status": status}
        if reason:
            tags["ablate.reason"] = reason
        self.client.log_batch(run_id, tags=_tags(tags))
        self.client.set_terminated(run_id, MLFLOW_STATUS[status])

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


class TrialRun(Callback):
    """One trial's child run, fed by the Trainer as a callback.

    Use as a context manager (or call `finish` yourself): an exception escaping the
    block ends the run FAILED with the exception as its reason; an interruption
    (KeyboardInterrupt, SystemExit) ends it KILLED, as a trial to resume.
    """

    def __init__(self, tracker: Tracker, run_id: str, trial):
        self.tracker = tracker
        self.client = tracker.client
        self.run_id = run_id
        self.trial = trial
        self.trainer: Trainer | None = None
        self.result: dict | None = None
        self.finished = False
        self._monitor = self._start_system_metrics()

    def _start_system_metrics(self):
        if not self.tracker.system_metrics:
            return None
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(self.run_id, sampling_interval=self.tracker.system_metrics_interval_s,
                                       tracking_uri=self.tracker.tracking_uri)
        monitor.start()
        return monitor

    def __enter__(self) -> TrialRun:
        return self

    def __exit__(self, kind, error, tb) -> None:
        if self.finished:
            return
        if error is not None and not isinstance(error, Exception):  # Ctrl-C, SystemExit: resumable
            self.finish("killed", f"interrupted ({kind.__name__})")
        elif error is not None:
            self.finish("failed", f"{kind.__name__}: {error}")
        elif self.result is None:
            self.finish("failed", "training ended without a result")
        else:
            self.finish(self.result["status"], self.result.get("message", ""))

    # ---------------------------------------------------------------- Callback
    def on_train_start(self, trainer: Trainer) -> None:
        self.trainer = trainer
        net = trainer.net
        self.client.log_batch(self.run_id, params=[Param("num_local_layers", str(net.plan.num_local))], tags=_tags({
            "ablate.device": trainer.device,
            "ablate.device_name": (torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda"
                                   else platform.processor() or platform.machine()),
        }))
        with torch.random.fork_rng(devices=[]):  # describing must not move the training's random stream
            description = describe_network(copy.deepcopy(net).cpu())
        self._log_metrics({
            "aux_flops": description["aux_flops"], "aux_params": description["aux_params"],
            "backbone_flops": description["backbone_flops"], "backbone_params": description["backbone_params"],
            "train_flops_per_example": training_flops(description)}, step=0)
        resumed = trainer.history
        if resumed:  # a resumed trial's run carries the epochs trained before the restart
            self.client.log_batch(self.run_id, tags=_tags({"ablate.resumed_from_epoch": resumed[-1]["epoch"]}))
            for metrics in resumed:
                self.on_epoch_end(metrics)
        self._log_files({
            "config.yaml": yaml.safe_dump(trainer.config.flat(), sort_keys=False),
            "plan.json": json.dumps(net.plan.as_dict(), indent=2),
            "network.json": json.dumps(description, indent=2),
        })

    def on_epoch_end(self, metrics: dict) -> None:
        values = {k: v for k, v in metrics.items() if k != "epoch"}
        self._log_metrics(values, step=metrics["epoch"])

    def on_train_end(self, result: dict) -> None:
        self.result = result
        final, best = result["final"] or {}, result["best"] or {}
        self._log_metrics({
            "final_test_acc": final.get("test_acc"), "final_val_acc": final.get("val_acc"),
            "final_train_loss": final.get("train_loss"), "final_train_acc": final.get("train_acc"),
            "best_val_acc": best.get("val_acc"), "best_test_acc": best.get("test_acc"),
            "best_epoch": best.get("epoch"), "peak_memory_bytes_max": result["peak_memory_bytes"],
            "time_per_epoch_s": result["time_per_epoch_s"], "epochs_completed": result["epochs_completed"],
        }, step=0)
        self._log_files({"result.json": json.dumps(result, indent=2, default=str)})
        if result["status"] == "finished":  # a diverged network's weights are not worth keeping
            state = {k: v.detach().cpu() for k, v in self.trainer.net.state_dict().items()}
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "final.pt"
                torch.save({"model": state, "config": self.trainer.config.flat()}, path)
                self.client.log_artifact(self.run_id, str(path), "checkpoint")

    # ---------------------------------------------------------------- ending
    def finish(self, status: str, reason: str = "") -> None:
        """End the run: finished → FINISHED; diverged/failed → FAILED with the reason;
        killed → KILLED. The system-metrics thread stops first. A second call does nothing."""
        if self.finished:
            return
        _check_status(status)
        self.finished = True
        if self._monitor is not None:
            self._monitor.finish()
            self._monitor = None
        self.tracker.terminate_run(self.run_id, status, reason if status != "finished" else "")

    # ---------------------------------------------------------------- helpers
    def _log_metrics(self, values: dict, step: int) -> None:
        for chunk in _chunks(_metrics(values, step), _MAX_METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=chunk)

    def _log_files(self, texts: dict[str, str]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in texts.items():
                path = Path(tmp) / name
                path.write_text(text)
                self.client.log_artifact(self.run_id, str(path))


# ------------------------------------------------------------------------------ reading
def finished_trial_runs(tracking_uri: str, experiment: str, study: str | None = None) -> list[dict]:
    """One dict per FINISHED trial run of the experiment (of `study` only, if given):
    {run_id, name, cell_id, seed, trial_key, factors, params, metrics, tags, status,
    mlflow_status, start_time, end_time}; `metrics` holds each metric's last value. A store or
    experiment that does not exist yet has no runs (and is not created)."""
    db = _sqlite_path(tracking_uri)
    if db is not None and not db.exists():
        return []
    client = _open_client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = _search_all(client, found.experiment_id,
                       f"tags.`ablate.role` = '{TRIAL_ROLE}' and attributes.status = 'FINISHED'",
                       order_by=["attributes.start_time ASC"])
    return [_run_record(run) for run in runs
            if study is None or run.data.tags.get("ablate.study") == study]


def latest_per_trial(runs: Iterable[dict]) -> dict[str, dict]:
    """{trial key: the run of that trial that ended last} of run records such as
    `finished_trial_runs` returns (a retried trial can have several)."""
    latest: dict[str, dict] = {}
    for run in runs:
        key = run.get("trial_key") or f"{run['cell_id']}-s{run['seed']}"
        if key not in latest or (run.get("end_time") or 0) >= (latest[key].get("end_time") or 0):
            latest[key] = run
    return latest


def _run_record(run) -> dict:
    tags = run.data.tags
    return {
        "run_id": run.info.run_id,
        "name": run.info.run_name,
        "cell_id": tags.get("ablate.cell_id"),
        "seed": int(tags["ablate.seed"]) if "ablate.seed" in tags else None,
        "trial_key": tags.get("ablate.trial_key"),
        "factors": json.loads(tags.get("ablate.factors", "{}")),
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": dict(tags),
        "status": tags.get("ablate.status", "finished"),
        "mlflow_status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
    }


def metric_history(tracking_uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of one metric of one run, by step (e.g. test_acc per epoch); a step
    logged more than once (a resumed trial, a repeated analysis) keeps its latest value."""
    latest = {}
    for m in sorted(_open_client(tracking_uri).get_metric_history(run_id, key), key=lambda m: m.timestamp):
        latest[m.step] = m.value
    return sorted((step, value) for step, value in latest.items() if not math.isnan(value))


# ------------------------------------------------------------------------------ analyses
CHECKPOINT_ARTIFACT = "checkpoint/final.pt"


def trial_run(tracking_uri: str, run_id: str) -> dict:
    """The record of one run by id (as `finished_trial_runs` gives them), whatever its status."""
    try:
        return _run_record(_open_client(tracking_uri).get_run(run_id))
    except MlflowException:
        raise TrackingError(f"no MLflow run {run_id!r} in {mask_url(tracking_uri)}; check the run id "
                            "(the MLflow UI shows it) or --tracking-uri") from None


def load_checkpoint(tracking_uri: str, run_id: str) -> dict:
    """A finished trial's final weights and settings: {"model": state_dict, "config": flat}."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = _open_client(tracking_uri).download_artifacts(run_id, CHECKPOINT_ARTIFACT, tmp)
        except (MlflowException, OSError):
            raise TrackingError(f"run {run_id} has no {CHECKPOINT_ARTIFACT}: only a trial that finished "
                                "training keeps its weights; pick a finished run") from None
        return torch.load(path, map_location="cpu", weights_only=True)


def log_analysis(tracking_uri: str, run_id: str, *, series: dict[str, Iterable[float]], files: Iterable[Path],
                 artifact_path: str, tags: dict) -> None:
    """Add an analysis to a (finished) run: each series as one metric with step = the
    representation's index, the files under `artifact_path`, and `tags`."""
    client = _open_client(tracking_uri)
    timestamp = int(time.time() * 1000)
    metrics = [Metric(key, float(value), timestamp, step)
               for key, values in series.items() for step, value in enumerate(values)]
    for chunk in _chunks(metrics, _MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=chunk)
    for path in files:
        client.log_artifact(run_id, str(path), artifact_path)
    set_run_tags(tracking_uri, run_id, tags)


def set_run_tags(tracking_uri: str, run_id: str, tags: dict) -> None:
    if tags:
        _open_client(tracking_uri).log_batch(run_id, tags=_tags(tags))


def download_artifacts(tracking_uri: str, run_id: str, path: str, destination: str | Path) -> Path:
    """Copy a run's artifact file or folder `path` into `destination`; its local path."""
    Path(destination).mkdir(parents=True, exist_ok=True)
    return Path(_open_client(tracking_uri).download_artifacts(run_id, path, str(destination)))
