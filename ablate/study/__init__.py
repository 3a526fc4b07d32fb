"""Runs a study through Optuna: which trial trains next, in which process, and what
happens when a trial fails or its worker dies. The only package that imports optuna.

    spec = load_study("studies/quickstart.yaml")
    run_study(spec, jobs=2)                  # trains every cell × seed not yet finished
    print(study_status(spec).render())       # done / running / failed (why) / pending

Modules, one idea each:
    storage     where the Optuna trials live (SQLite, journal file, database URL)
    store       the calls made on that storage, each retried or not, and why
    optimizer   the Optuna study: directions, search sampler and pruner
    attempts    reading trials: slots, attempts, dead workers, the state of a slot
    liveness    who a worker is and whether its process still lives
    heartbeat   the sign of life a worker leaves on its trial
    session     one process's connection to a study: claim, enqueue, fail stale trials
    training    training one claimed trial and recording how it ended
    results     what a finished training result leaves in Optuna
    analyses    the study's analyses, run as soon as their inputs exist
    outcome     what became of a claimed trial, as workers report it
    workers     the worker processes of `--jobs N`
    progress    how far a study is (counts); display: the status line; text: durations
    run         run_study and its RunSummary
    status      study_status and its StatusReport
    dry_run     what `ablate run --dry-run` prints
    importance  a search's parameter importances (fANOVA)
"""

from .attempts import DONE, FAILED, MAX_WORKER_DEATHS, PENDING, RUNNING, STALE_AFTER_S
from .dry_run import render_dry_run
from .importance import param_importances
from .optimizer import GRID_DIRECTIONS
from .outcome import TrialOutcome
from .run import RunSummary, run_study
from .session import HEARTBEAT_S
from .status import StatusReport, TrialStatus, study_status
from .storage import StudyStorageError, resolve_storage
from .workers import work_in_process

__all__ = [
    "DONE", "FAILED", "GRID_DIRECTIONS", "HEARTBEAT_S", "MAX_WORKER_DEATHS", "PENDING", "RUNNING", "STALE_AFTER_S",
    "RunSummary", "StatusReport", "StudyStorageError", "TrialOutcome", "TrialStatus", "param_importances",
    "render_dry_run",
    "resolve_storage", "run_study", "study_status", "work_in_process",
]
