"""MLflow: one experiment per study, one parent run per study, one child run per trial.
The only package that imports mlflow.

    tracker = Tracker(resolve_tracking_uri(spec), spec.experiment)
    parent = tracker.parent_run_id(spec.name)
    with tracker.start_trial(parent, trial, optuna_number, device) as run:
        Trainer(trial.config, callbacks=[run]).fit()
    runs = finished_trial_runs(uri, spec.experiment, spec.name)   # [RunRecord]

Modules, one idea each:
    uris        which store a study uses, where artifacts go, whether it answers
    store       one client per store per process; each call says whether it is retried
    names       the roles, tags, statuses and artifact names runs are found by
    provenance  the commit and versions a run came from
    writer      the experiment, the parent run, trial runs, ending runs from outside
    callback    a trial's run fed by the Trainer (TrialRun)
    reader      typed records of finished runs (RunRecord), metric histories
    artifacts   final weights read back; analyses written to the runs they analysed
"""

import warnings

# MLflow imports tqdm.auto at import time; in a notebook without ipywidgets tqdm then warns
# "IProgress not found", a warning box in every analysis notebook about a widget no one uses
warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")

# noqa: E402 below: the imports come after the filter, which must precede mlflow's
from .artifacts import download_artifacts, load_checkpoint, log_analysis, set_run_tags  # noqa: E402
from .callback import TrialRun  # noqa: E402
from . import names
from .names import CHECKPOINT_ARTIFACT, MLFLOW_STATUS, PARENT_ROLE, TRIAL_ROLE
from .reader import RunRecord, finished_trial_runs, latest_finished, latest_per_trial, metric_history, run_record
from .store import TrackingStore, store_for
from .uris import (TrackingError, check_tracking_reachable, default_artifact_location, default_tracking_uri,
                   resolve_tracking_uri)
from .writer import Tracker, run_name

__all__ = [
    "CHECKPOINT_ARTIFACT", "MLFLOW_STATUS", "names", "PARENT_ROLE", "TRIAL_ROLE", "RunRecord", "Tracker", "TrackingError",
    "TrackingStore", "TrialRun", "check_tracking_reachable", "default_artifact_location", "default_tracking_uri",
    "download_artifacts", "finished_trial_runs", "latest_finished", "latest_per_trial", "load_checkpoint",
    "log_analysis", "metric_history", "resolve_tracking_uri", "run_name", "run_record", "set_run_tags", "store_for",
]
