"""Runs a study through Optuna: which trial trains next, in which process, and what
happens when a trial fails or its worker dies. The only module that imports optuna.

    spec = load_study("studies/quickstart.yaml")
    run_study(spec, jobs=2)                  # trains every cell × seed not yet finished
    print(study_status(spec).render())       # done / running / failed (why) / pending

Grid studies. Every trial of the spec (cell × seed, `Trial.key`) is one Optuna trial
with the user attribute "trial_key"; no sampler is involved. `ablate run` enqueues a
WAITING trial for every key that has none yet, and workers claim WAITING trials by
moving them to RUNNING through the storage, which succeeds for exactly one caller (a
row lock in an RDB, the order of the log in a journal). Two processes that enqueue the
same missing key at the same moment leave two WAITING trials; a worker that claims one
while another trial of its key is finished, or running with a lower number, marks its
own FAIL with user attribute "duplicate_of" and moves on. Status and counts ignore
duplicates.

Liveness. A running trial carries "worker_host", "worker_pid" and a "heartbeat" (unix
time, refreshed every few seconds by a thread of its worker). Its worker is gone when it
ran on this host and its pid is dead, or when its heartbeat is older than
`stale_after_s`. Every `ablate run`, and every worker between two trials, fails such
trials (reason "worker died (pid N on HOST)"), ends their MLflow runs as KILLED and
enqueues their keys again with "resume_from" = their checkpoint folder
(<study dir>/checkpoints/<key>/), so the new attempt continues from the last finished
epoch; the folder is deleted when a trial ends (the final weights are an MLflow artifact). A key whose workers died MAX_WORKER_DEATHS times is left failed (a trial that
kills its worker, e.g. out of memory, would otherwise run forever).

Stopping. The first Ctrl-C lets every running trial finish its epoch (whose checkpoint
is then on disk), records it FAIL with "interrupted" and its MLflow run KILLED, and
stops; the next `ablate run` resumes it. A second Ctrl-C stops at once.

Storage. One process: SQLite beside the study. Several processes on this host: an
Optuna journal file (SQLite serialises writers through one file lock, and under several
writers a transaction can wait long or fail with "database is locked"). Several hosts: a
database URL such as postgresql://. A study keeps the storage it started with.

Search studies (`search:` in the file) sample settings with an Optuna sampler instead,
until the trial budget is spent; a pruner, if any, stops trials whose best validation
accuracy so far falls behind.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import queue
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from .errors import UserInputError
from .spec import StudySpec, Trial
from .tracking import Tracker, mask_url, resolve_tracking_uri, run_name
from .train import Callback, CheckpointMismatch, Trainer
from .worker import HOST, Heartbeat, StopRequest, pid_alive, torch_threads, worker_main

STALE_AFTER_S = 120.0
HEARTBEAT_S = 10.0
MAX_WORKER_DEATHS = 3
GRID_DIRECTIONS = ("maximize",)  # best validation accuracy (final test accuracy without a validation split)

DONE, RUNNING, FAILED, PENDING = "done", "running", "failed", "pending"


class StudyStorageError(UserInputError):
    """The Optuna storage cannot be opened, or holds a different study under this name."""


# ------------------------------------------------------------------------------ storage
def resolve_storage(spec: StudySpec, storage_override: str | None = None, jobs: int = 1) -> str:
    """The Optuna storage URL of a study: `storage_override` (the CLI's --storage), else
    the study file's `storage:`, else a file in the study's folder: SQLite
    (`optuna.db`) for one process, an Optuna journal (`optuna.journal`) for several.
    Whichever default file exists already wins, so a study keeps its storage when it is
    resumed with another --jobs. "journal:///PATH" or a path ending in .journal is a
    journal file; anything else is a SQLAlchemy URL (sqlite:///, postgresql://, ...).
    Relative paths count from the working directory (override) or the study file's folder.
    SQLite serialises writers through one lock: with several processes on it, expect
    waits and, under load, "database is locked" failures; prefer a journal or a server.
    """
    if storage_override:
        return _absolute_url(storage_override, Path.cwd())
    if spec.storage:
        return _absolute_url(spec.storage, spec.path.parent)
    database, journal = spec.directory / "optuna.db", spec.directory / "optuna.journal"
    if journal.exists() or (jobs > 1 and not database.exists()):
        return f"journal://{journal.resolve()}"
    return f"sqlite:///{database.resolve()}"


def _journal_path(url: str) -> Path | None:
    if url.startswith("journal://"):
        return Path(url[len("journal://"):])
    if "://" not in url and url.endswith(".journal"):
        return Path(url)
    return None


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].partition("?")[0]
    return None if path in ("", ":memory:") else Path(path)


def _absolute_url(url: str, base: Path) -> str:
    journal = _journal_path(url)
    if journal is not None:
        return f"journal://{(base / journal).resolve()}"
    database = _sqlite_path(url)
    if database is not None and not database.is_absolute():
        query = url.partition("?")[2]
        return f"sqlite:///{(base / database).resolve()}" + (f"?{query}" if query else "")
    return url


def _storage_exists(url: str) -> bool:
    """False only for a file storage whose file is not there yet (nothing to read)."""
    path = _journal_path(url) or _sqlite_path(url)
    return path is None or path.exists()


def _open_storage(url: str) -> BaseStorage:
    journal = _journal_path(url)
    try:
        if journal is not None:
            journal.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(journal)))
        engine_kwargs = {}
        database = _sqlite_path(url)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
            # wait for another writer's lock instead of failing after SQLite's 5 s
            engine_kwargs = {"connect_args": {"timeout": 60}}
        return RDBStorage(url, engine_kwargs=engine_kwargs)
    except (ImportError, OSError, ValueError, RuntimeError, sqlalchemy.exc.SQLAlchemyError) as err:
        raise StudyStorageError(f"cannot open the Optuna storage {mask_url(url)}: {_one_line(err)}; "
                                "check --storage or 'storage:' in the study file") from None


def _directions(spec: StudySpec) -> list[str]:
    if spec.search is None:
        return list(GRID_DIRECTIONS)
    return [direction for _, direction in spec.search.objectives]


def _sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler | None:
    if spec.search is None:
        return None
    make = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
            "nsga2": optuna.samplers.NSGAIISampler}[spec.search.sampler]
    return make(seed=seed)


def _pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    search = spec.search
    if search is None or search.pruner is None:
        return optuna.pruners.NopPruner()
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_warmup_steps=1)
    return optuna.pruners.HyperbandPruner(min_resource=1)


def _check_directions(spec: StudySpec, study: optuna.Study, url: str) -> None:
    found = [d.name.lower() for d in study.directions]
    if found != _directions(spec):
        raise StudyStorageError(
            f"the Optuna storage {mask_url(url)} holds a study {spec.name!r} that optimises {found}, but the study "
            f"file asks for {_directions(spec)}; give the study another 'name:' or another storage")


# ------------------------------------------------------------------------------ reading trials
def _slot(trial: FrozenTrial) -> str | None:
    """What a trial is an attempt at: a grid key, or the first attempt of a searched point."""
    return trial.user_attrs.get("slot")


def _is_duplicate(trial: FrozenTrial) -> bool:
    return "duplicate_of" in trial.user_attrs


def _attempts(trials: list[FrozenTrial]) -> dict[str, list[FrozenTrial]]:
    """Non-duplicate trials by slot, oldest first."""
    by_slot = defaultdict(list)
    for trial in sorted(trials, key=lambda t: t.number):
        if not _is_duplicate(trial) and _slot(trial) is not None:
            by_slot[_slot(trial)].append(trial)
    return by_slot


def _worker_deaths(attempts: list[FrozenTrial]) -> int:
    return sum(1 for t in attempts if t.state == TrialState.FAIL and t.user_attrs.get("interrupted") == "died")


def _resumable(attempts: list[FrozenTrial]) -> bool:
    """Whether the last attempt was interrupted (killed, Ctrl-C) and may continue."""
    last = attempts[-1]
    return (last.state == TrialState.FAIL and bool(last.user_attrs.get("interrupted"))
            and _worker_deaths(attempts) < MAX_WORKER_DEATHS)


@dataclass(frozen=True)
class _SlotState:
    state: str  # DONE | RUNNING | FAILED | PENDING
    trial: FrozenTrial | None  # the attempt the state comes from
    detail: str = ""  # failure reason, why pending, or the running worker


def _slot_state(attempts: list[FrozenTrial], now: float, stale_after_s: float) -> _SlotState:
    by_state = defaultdict(list)
    for attempt in attempts:
        by_state[attempt.state].append(attempt)
    if by_state[TrialState.COMPLETE]:
        return _SlotState(DONE, by_state[TrialState.COMPLETE][-1])
    if by_state[TrialState.PRUNED]:
        return _SlotState(DONE, by_state[TrialState.PRUNED][-1], "pruned")
    for running in by_state[TrialState.RUNNING]:
        dead = _staleness(running, now, stale_after_s)
        attrs = running.user_attrs
        where = f"pid {attrs['worker_pid']} on {attrs['worker_host']}" if "worker_pid" in attrs else "starting"
        if dead is None:
            return _SlotState(RUNNING, running, where)
        return _SlotState(RUNNING, running, f"{dead}; the next `ablate run` resumes it")
    if by_state[TrialState.WAITING]:
        waiting = by_state[TrialState.WAITING][0]
        return _SlotState(PENDING, waiting, "queued, resumes from its checkpoint"
                          if waiting.user_attrs.get("resume_from") else "queued")
    if not attempts:
        return _SlotState(PENDING, None)
    last = attempts[-1]
    reason = last.user_attrs.get("reason", "failed")
    if _resumable(attempts):
        return _SlotState(PENDING, last, f"interrupted ({reason}); resumes from its checkpoint")
    deaths = _worker_deaths(attempts)
    if last.user_attrs.get("interrupted") and deaths >= MAX_WORKER_DEATHS:
        reason = f"its worker died {deaths} times (last: {reason}); `--retry-failed` tries again"
    return _SlotState(FAILED, last, reason)


# ------------------------------------------------------------------------------ liveness
def _staleness(trial: FrozenTrial, now: float, stale_after_s: float) -> str | None:
    """Why a RUNNING trial's worker is gone, or None while it lives."""
    attrs = trial.user_attrs
    host, pid = attrs.get("worker_host"), attrs.get("worker_pid")
    if host == HOST and pid is not None and not pid_alive(pid):
        return f"worker died (pid {pid} on {host})"
    last_sign = attrs.get("heartbeat")
    if last_sign is None and trial.datetime_start is not None:
        last_sign = trial.datetime_start.timestamp()  # claimed, worker details not written yet
    if last_sign is not None and now - last_sign > stale_after_s:
        who = f"pid {pid} on {host}" if pid is not None else "its worker"
        return f"worker died (no heartbeat from {who} for {now - last_sign:.0f} s)"
    return None


# ------------------------------------------------------------------------------ outcomes
@dataclass(frozen=True)
class TrialOutcome:
    """What became of one claimed trial (sent from worker processes to the parent)."""

    key: str
    label: str  # "rule=bp,aux_depth=1 seed 0"
    number: int  # Optuna trial number
    status: str  # "finished" | "failed" | "pruned" | "duplicate" | "interrupted" | "lost"
    reason: str = ""
    value: float | None = None  # the (first) objective
    seconds: float = 0.0
    resumed_from_epoch: int = 0

    def line(self, done: int, total: int) -> str:
        head = f"[{done}/{total}] {self.label} ({self.key}, trial {self.number})"
        resumed = f", resumed after epoch {self.resumed_from_epoch}" if self.resumed_from_epoch else ""
        if self.status == "finished":
            value = "" if self.value is None else f": objective {self.value:.4g}"
            return f"{head} finished{value} in {_duration(self.seconds)}{resumed}"
        return f"{head} {self.status}: {self.reason}"


class _TrialTakenOver(Exception):
    """Someone declared this worker dead and finished its trial; stop training it."""


def _one_line(err: BaseException | str) -> str:
    text = err if isinstance(err, str) else (f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
    text = " ".join(mask_url(str(text)).split())
    return text if len(text) <= 500 else text[:497] + "..."


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


_RESULT_METRICS = {
    "best_val_acc": lambda r: (r["best"] or {}).get("val_acc"),
    "final_val_acc": lambda r: (r["final"] or {}).get("val_acc"),
    "final_train_loss": lambda r: (r["final"] or {}).get("train_loss"),
    "peak_memory_bytes_max": lambda r: r["peak_memory_bytes"],
    "time_per_epoch_s": lambda r: r["time_per_epoch_s"],
}


def _result_attrs(result: dict) -> dict:
    """The summary of a training result stored with its Optuna trial."""
    final, best = result["final"] or {}, result["best"] or {}
    return {
        "status": result["status"], "epochs_completed": result["epochs_completed"],
        "final_test_acc": final.get("test_acc"), "final_val_acc": final.get("val_acc"),
        "best_val_acc": best.get("val_acc"), "best_test_acc": best.get("test_acc"), "best_epoch": best.get("epoch"),
        "peak_memory_bytes": result["peak_memory_bytes"], "time_per_epoch_s": result["time_per_epoch_s"],
    }


@dataclass
class _Verdict:
    """How a claimed trial ends in the storage, decided while training and written after."""

    state: TrialState
    outcome: str  # TrialOutcome.status
    reason: str = ""
    values: list[float] | None = None
    attrs: dict = field(default_factory=dict)
    keep_checkpoint: bool = False
    resumed_from_epoch: int = 0
    run_status: tuple[str, str] = ("killed", "interrupted by the user")  # how its MLflow run ends


# ------------------------------------------------------------------------------ the session
class _Session:
    """One process's connection to a study: its Optuna storage and MLflow tracker, and
    the loop that claims and trains trials until none is left."""

    def __init__(self, spec: StudySpec, storage_url: str, tracking_uri: str, *, parent_id: str | None = None,
                 stale_after_s: float = STALE_AFTER_S, sampler_seed: int | None = None,
                 should_stop: Callable[[], bool] = lambda: False):
        self.spec = spec
        self.should_stop = should_stop
        self.notify: Callable[[str], None] = lambda text: None  # stale trials found between trials
        self.on_epoch: Callable[[], None] = lambda: None
        self.storage_url = storage_url
        self.stale_after_s = stale_after_s
        self.heartbeat_s = min(HEARTBEAT_S, stale_after_s / 4)
        self.storage = _open_storage(storage_url)
        seed = spec.seeds[0] if sampler_seed is None else sampler_seed
        self.study = optuna.create_study(storage=self.storage, study_name=spec.name, directions=_directions(spec),
                                         sampler=_sampler(spec, seed), pruner=_pruner(spec), load_if_exists=True)
        _check_directions(spec, self.study, storage_url)
        self.study_id = self.storage.get_study_id_from_name(spec.name)
        self.tracker = Tracker(tracking_uri, spec.experiment)
        self.parent_id = parent_id or self.tracker.parent_run_id(spec.name)
        self.trials_by_key = {trial.key: trial for trial in spec.trials}

    # ---------------------------------------------------------------- storage helpers
    def all_trials(self) -> list[FrozenTrial]:
        return self.storage.get_all_trials(self.study_id, deepcopy=False)

    def _set_attrs(self, trial: FrozenTrial, attrs: dict) -> None:
        try:
            for key, value in attrs.items():
                self.storage.set_trial_user_attr(trial._trial_id, key, value)
        except UpdateFinishedTrialError:
            raise _TrialTakenOver(f"trial {trial.number} was ended by another process (its worker was "
                                  "taken for dead)") from None

    def _end(self, trial: FrozenTrial, state: TrialState, attrs: dict, values: list[float] | None = None) -> bool:
        """Write `attrs`, then finish the trial; False if another process finished it first."""
        try:
            self._set_attrs(trial, attrs)
            if self.storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
                return False
            self.study.tell(trial.number, values=values, state=state)
        except (_TrialTakenOver, UpdateFinishedTrialError):
            return False
        return True

    def checkpoint_dir(self, slot: str) -> Path:
        return self.spec.directory / "checkpoints" / slot

    def label(self, trial: Trial) -> str:
        return run_name(trial.factors, trial.seed)

    # ---------------------------------------------------------------- maintenance
    def fail_stale(self) -> list[str]:
        """Fail RUNNING trials whose worker is gone and end their MLflow runs; one note each."""
        now = time.time()
        notes, run_ids = [], []
        for trial in self.all_trials():
            if trial.state != TrialState.RUNNING:
                continue
            reason = _staleness(trial, now, self.stale_after_s)
            if reason is None:
                continue
            if not self._end(trial, TrialState.FAIL, {"reason": reason, "interrupted": "died"}):
                continue  # another process failed it (or it finished) in the meantime
            key = trial.user_attrs.get("trial_key", _slot(trial))
            notes.append(f"trial {trial.number} ({key}): {reason}; it will resume from its checkpoint")
            if "mlflow_run_id" in trial.user_attrs:
                run_ids.append(trial.user_attrs["mlflow_run_id"])
        if run_ids:
            running = {run["run_id"] for run in self.tracker.running_trial_runs(self.spec.name)}
            for run_id in run_ids:
                if run_id in running:
                    self.tracker.terminate_run(run_id, "killed", "the process training this trial died")
        return notes

    def end_orphan_runs(self) -> list[str]:
        """End RUNNING MLflow runs that no live trial owns (a worker killed between starting
        its run and recording the run's id). MLflow is read before Optuna: a run that a
        live worker just started already has its RUNNING trial in the storage."""
        owned: dict[str, set] = {}

        def is_alive(trial_key: str, run_id: str) -> bool:
            if not owned:
                now, trials = time.time(), self.all_trials()
                owned["known"] = {t.user_attrs.get("mlflow_run_id") for t in trials}
                live = [t for t in trials if t.state == TrialState.COMPLETE or (
                    t.state == TrialState.RUNNING and _staleness(t, now, self.stale_after_s) is None)]
                owned["protected"] = {t.user_attrs.get("mlflow_run_id") for t in live}
                owned["live_keys"] = {t.user_attrs.get("trial_key") for t in live if t.state == TrialState.RUNNING}
            return run_id in owned["protected"] or (run_id not in owned["known"] and trial_key in owned["live_keys"])

        ended = self.tracker.mark_stale_runs(self.spec.name, is_alive)
        return [f"MLflow run {run_id} had no live trial; ended as KILLED" for run_id in ended]

    def enqueue_missing(self, retry_failed: bool = False) -> int:
        """Queue what should train and is neither queued, running nor done: new keys,
        interrupted attempts (to resume) and, with retry_failed, failed keys."""
        attempts = _attempts(self.all_trials())
        queued = 0
        if self.spec.search is None:
            for key, trial in self.trials_by_key.items():
                fresh = {"trial_key": key, "slot": key, "cell_id": trial.cell_id, "seed": trial.seed}
                attrs = self._next_attempt(attempts.get(key, []), fresh, retry_failed)
                if attrs is not None:
                    self.study.enqueue_trial({}, user_attrs=attrs)
                    queued += 1
            return queued
        for slot, tries in attempts.items():
            first = tries[0].user_attrs
            fresh = {k: first[k] for k in ("trial_key", "slot", "cell_id", "seed") if k in first}
            attrs = self._next_attempt(tries, fresh, retry_failed)
            if attrs is not None and tries[-1].params:
                self.study.enqueue_trial(dict(tries[-1].params), user_attrs=attrs)
                queued += 1
        return queued

    def _next_attempt(self, tries: list[FrozenTrial], fresh: dict, retry_failed: bool) -> dict | None:
        if not tries:
            return fresh
        states = {t.state for t in tries}
        if states & {TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING}:
            return None
        last = tries[-1]
        if last.user_attrs.get("interrupted") and (_resumable(tries) or retry_failed):
            resume_from = last.user_attrs.get("checkpoint_dir") or str(self.checkpoint_dir(fresh["slot"]))
            return {**fresh, "resume_from": resume_from}
        return fresh if retry_failed else None

    def maintain(self, retry_failed: bool = False) -> None:
        for note in self.fail_stale():
            self.notify(note)
        self.enqueue_missing(retry_failed)

    # ---------------------------------------------------------------- claiming
    def claim(self) -> FrozenTrial | None:
        """Move one WAITING trial of this spec to RUNNING; None when none is left."""
        for trial in self.storage.get_all_trials(self.study_id, deepcopy=False, states=(TrialState.WAITING,)):
            if trial.user_attrs.get("trial_key") not in self.trials_by_key:
                continue  # queued by a version of the study file that had this key
            try:
                if self.storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING):
                    return self.storage.get_trial(trial._trial_id)
            except UpdateFinishedTrialError:
                continue
        return None

    def duplicate_of(self, claimed: FrozenTrial) -> FrozenTrial | None:
        """Another attempt at the same key that is finished, or running with a lower number."""
        now = time.time()
        for other in _attempts(self.all_trials()).get(_slot(claimed), []):
            if other.number == claimed.number:
                continue
            if other.state == TrialState.COMPLETE:
                return other
            if (other.state == TrialState.RUNNING and other.number < claimed.number
                    and _staleness(other, now, self.stale_after_s) is None):
                return other
        return None

    # ---------------------------------------------------------------- the loops
    def work(self, emit: Callable[[TrialOutcome], None], retry_failed: bool = False) -> None:
        """Train trials until nothing is left to claim (grid) or the budget is spent (search)."""
        if self.spec.search is not None:
            self._search(emit, retry_failed)
            return
        first = True
        while True:
            self._stop_if_asked()
            self.maintain(retry_failed and first)
            first = False
            claimed = self.claim()
            if claimed is None:
                return
            trial = self.trials_by_key[claimed.user_attrs["trial_key"]]
            duplicate = self.duplicate_of(claimed)
            if duplicate is not None:
                reason = f"duplicate of trial {duplicate.number}"
                self._end(claimed, TrialState.FAIL, {"duplicate_of": duplicate.number, "reason": reason})
                emit(TrialOutcome(trial.key, self.label(trial), claimed.number, "duplicate", reason))
                continue
            emit(self.train(claimed, trial))

    def _search(self, emit: Callable[[TrialOutcome], None], retry_failed: bool) -> None:
        first = True
        while True:
            self._stop_if_asked()
            self.maintain(retry_failed and first)
            first = False
            trials = self.all_trials()
            waiting = any(t.state == TrialState.WAITING for t in trials)
            used = len({_slot(t) or f"#{t.number}" for t in trials if not _is_duplicate(t)})
            if not waiting and used >= self.spec.search.n_trials:
                return
            asked = self.study.ask()
            claimed = self.storage.get_trial(
                self.storage.get_trial_id_from_study_id_trial_number(self.study_id, asked.number))
            slot = _slot(claimed) or f"trial-{claimed.number}"  # a new point, or a requeued one's slot
            duplicate = self.duplicate_of(claimed) if _slot(claimed) else None
            if duplicate is not None:
                self._end(claimed, TrialState.FAIL, {"duplicate_of": duplicate.number,
                                                     "reason": f"duplicate of trial {duplicate.number}"})
                continue
            values = {key: _suggest(asked, key, param) for key, param in self.spec.search.params.items()}
            try:
                trial = self.spec.trial(values, self.spec.seeds[0])
            except UserInputError as err:
                reason = f"sampled settings cannot be trained: {_one_line(err)}"
                self._end(claimed, TrialState.FAIL, {"slot": slot, "reason": reason})
                emit(TrialOutcome(slot, str(values), claimed.number, "failed", reason))
                continue
            self._set_attrs(claimed, {"slot": slot, "trial_key": trial.key, "cell_id": trial.cell_id,
                                      "seed": trial.seed})
            emit(self.train(self.storage.get_trial(claimed._trial_id), trial, asked))

    def _stop_if_asked(self) -> None:
        if self.should_stop():
            raise KeyboardInterrupt

    # ---------------------------------------------------------------- one trial
    def train(self, claimed: FrozenTrial, trial: Trial, asked: optuna.Trial | None = None) -> TrialOutcome:
        """Train a claimed trial and record how it ended; Ctrl-C is recorded, then re-raised."""
        started = time.time()
        resume_from = claimed.user_attrs.get("resume_from")
        checkpoint_dir = Path(resume_from) if resume_from else self.checkpoint_dir(_slot(claimed))
        if not resume_from:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)  # a failed attempt's leftovers
        try:
            self._set_attrs(claimed, {"worker_host": HOST, "worker_pid": os.getpid(), "heartbeat": time.time(),
                                      "checkpoint_dir": str(checkpoint_dir), "epochs": trial.config.epochs,
                                      "epoch": 0})
        except _TrialTakenOver as lost:
            return TrialOutcome(trial.key, self.label(trial), claimed.number, "lost", str(lost))

        def beat() -> None:
            self.storage.set_trial_user_attr(claimed._trial_id, "heartbeat", time.time())

        with Heartbeat(beat, self.heartbeat_s) as heartbeat:
            verdict = self._fit(claimed, trial, checkpoint_dir, heartbeat, asked)
        if verdict.outcome != "lost":
            attrs = {**verdict.attrs, **({"reason": verdict.reason} if verdict.reason else {})}
            if not self._end(claimed, verdict.state, attrs, verdict.values):
                verdict.outcome, verdict.reason = "lost", "another process ended this trial first"
            elif not verdict.keep_checkpoint:
                shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the final one is an MLflow artifact
        outcome = TrialOutcome(trial.key, self.label(trial), claimed.number, verdict.outcome, verdict.reason,
                               (verdict.values or [None])[0], time.time() - started, verdict.resumed_from_epoch)
        if verdict.outcome == "interrupted":
            raise KeyboardInterrupt
        return outcome

    def _fit(self, claimed: FrozenTrial, trial: Trial, checkpoint_dir: Path, heartbeat: Heartbeat,
             asked: optuna.Trial | None) -> _Verdict:
        """Train with MLflow tracking; every way training can end becomes a verdict, and
        the trial's MLflow run ends with the matching status."""
        try:
            run = self.tracker.start_trial(self.parent_id, trial, claimed.number, trial.config.device)
        except Exception as err:  # the tracking store failed: the trial fails, the study goes on
            return _Verdict(TrialState.FAIL, "failed", f"MLflow: {_one_line(err)}")
        with run:  # should ending the run below raise, the run still ends (FAILED)
            reporter = _TrialReporter(self, claimed, heartbeat, asked)
            verdict = self._train_tracked(claimed, trial, checkpoint_dir, run, reporter)
            if verdict.outcome == "interrupted":
                # Ctrl-C may have hit a database write: the cursor it interrupted holds SQLite's
                # lock until the frames of its traceback are collected
                gc.collect()
                try:
                    run.finish(*verdict.run_status)
                except Exception:  # the next `ablate run` ends runs that no live trial owns
                    pass
            else:
                run.finish(*verdict.run_status)
        return verdict

    def _train_tracked(self, claimed: FrozenTrial, trial: Trial, checkpoint_dir: Path, run, reporter) -> _Verdict:
        resumed = 0
        try:
            self._set_attrs(claimed, {"mlflow_run_id": run.run_id})
            trainer = self._trainer(trial, [run, reporter], checkpoint_dir)
            resumed = trainer.start_epoch - 1
            if resumed:
                self._set_attrs(claimed, {"resumed_from_epoch": resumed})
            result = trainer.fit()
        except KeyboardInterrupt:
            return _Verdict(TrialState.FAIL, "interrupted", "interrupted by the user", attrs={"interrupted": "user"},
                            keep_checkpoint=True, resumed_from_epoch=resumed)
        except optuna.TrialPruned as pruned:
            return _Verdict(TrialState.PRUNED, "pruned", str(pruned), resumed_from_epoch=resumed,
                            run_status=("killed", f"pruned: {pruned}"))
        except _TrialTakenOver as lost:
            return _Verdict(TrialState.FAIL, "lost", str(lost), keep_checkpoint=True, run_status=("killed", str(lost)))
        except Exception as err:  # a bug or a bad setting in this trial: record it, go on
            reason = _one_line(err)
            return _Verdict(TrialState.FAIL, "failed", reason, resumed_from_epoch=resumed,
                            run_status=("failed", reason))
        attrs = _result_attrs(result)
        if result["status"] != "finished":
            reason = _one_line(result["message"])
            return _Verdict(TrialState.FAIL, "failed", reason, attrs=attrs, resumed_from_epoch=resumed,
                            run_status=(result["status"], reason))
        values, missing = self._objectives(result, trainer)
        if missing:
            reason = f"objective {missing} has no value"
            return _Verdict(TrialState.FAIL, "failed", reason, attrs=attrs, resumed_from_epoch=resumed,
                            run_status=("failed", reason))
        return _Verdict(TrialState.COMPLETE, "finished", values=values, attrs=attrs, resumed_from_epoch=resumed,
                        run_status=("finished", ""))

    def _trainer(self, trial: Trial, callbacks: list, checkpoint_dir: Path) -> Trainer:
        try:
            return Trainer(trial.config, callbacks=callbacks, checkpoint_dir=checkpoint_dir)
        except CheckpointMismatch:
            # same cell, other execution settings (e.g. another device): start over
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
            return Trainer(trial.config, callbacks=callbacks, checkpoint_dir=checkpoint_dir)

    def _objectives(self, result: dict, trainer: Trainer) -> tuple[list[float], str | None]:
        """The Optuna values of a finished result, or the name of a missing one. Grid
        studies record best validation accuracy (final test accuracy when the study holds
        out no validation split; no grid study selects anything by it)."""
        if self.spec.search is None:
            value = _RESULT_METRICS["best_val_acc"](result)
            if value is None:
                value = (result["final"] or {}).get("test_acc")
            return ([value], None) if value is not None else ([], "best_val_acc")
        values = []
        for metric, _ in self.spec.search.objectives:
            value = _RESULT_METRICS[metric](result) if metric in _RESULT_METRICS else _network_metric(trainer, metric)
            if value is None or not math.isfinite(value):
                return [], metric
            values.append(float(value))
        return values, None


def _network_metric(trainer: Trainer, metric: str) -> float:
    from .describe import describe_network, training_flops

    description = describe_network(trainer.net)
    return training_flops(description) if metric == "train_flops_per_example" else description[metric]


def _suggest(asked: optuna.Trial, key: str, param: dict):
    if param["kind"] == "categorical":
        return asked.suggest_categorical(key, param["choices"])
    if param["kind"] == "int":
        return asked.suggest_int(key, param["low"], param["high"], step=param["step"] or 1, log=param["log"])
    return asked.suggest_float(key, param["low"], param["high"], step=param["step"], log=param["log"])


class _TrialReporter(Callback):
    """Tells the storage how far a trial got, stops it when its worker was taken for
    dead, and in searches reports best validation accuracy to the pruner."""

    def __init__(self, session: _Session, claimed: FrozenTrial, heartbeat: Heartbeat, asked: optuna.Trial | None):
        self.session = session
        self.claimed = claimed
        self.heartbeat = heartbeat
        self.asked = asked if session.spec.search is not None and session.spec.search.pruner else None
        self.best = -math.inf

    def on_train_start(self, trainer: Trainer) -> None:
        for metrics in trainer.history:  # a resumed trial's earlier epochs
            self._report(metrics)

    def on_epoch_end(self, metrics: dict) -> None:
        if self.heartbeat.failed is not None:
            raise _TrialTakenOver(f"the heartbeat stopped: {_one_line(self.heartbeat.failed)}")
        self.session._set_attrs(self.claimed, {"epoch": metrics["epoch"], "heartbeat": time.time()})
        self.session._stop_if_asked()  # the epoch's checkpoint is saved: the next attempt resumes after it
        self._report(metrics)
        self.session.on_epoch()
        if self.asked is not None and self.asked.should_prune():
            raise optuna.TrialPruned(f"best validation accuracy {self.best:.4f} after epoch {metrics['epoch']}")

    def _report(self, metrics: dict) -> None:
        if self.asked is None or metrics["val_acc"] is None:
            return
        self.best = max(self.best, metrics["val_acc"])
        self.asked.report(self.best, metrics["epoch"])


# ------------------------------------------------------------------------------ worker processes
def work_in_process(payload: dict, send: Callable[[tuple], None], should_stop: Callable[[], bool]) -> None:
    """The body of a worker process: connect to the study and train until done."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    session = _Session(payload["spec"], payload["storage"], payload["tracking_uri"],
                       parent_id=payload["parent_id"], stale_after_s=payload["stale_after_s"],
                       sampler_seed=payload["sampler_seed"], should_stop=should_stop)
    session.notify = lambda text: send(("note", text))
    session.work(lambda outcome: send(("outcome", outcome)))


def _run_workers(session: _Session, jobs: int, tracking_uri: str, display: _Display,
                 collect: Callable[[TrialOutcome], None], note: Callable[[str], None]) -> None:
    """Start `jobs` spawned worker processes and show their progress until all stop,
    passing on their notes and a note for each worker that crashed. The first Ctrl-C
    (`session.should_stop`) asks the workers to stop after their current epoch; a second
    terminates them (their trials resume in the next run)."""
    context = multiprocessing.get_context("spawn")
    events, stop = context.Queue(), context.Event()
    base_seed = session.spec.seeds[0]
    procs = []
    for index in range(jobs):
        payload = {"spec": session.spec, "storage": session.storage_url, "tracking_uri": tracking_uri,
                   "parent_id": session.parent_id, "stale_after_s": session.stale_after_s,
                   "threads": torch_threads(jobs), "sampler_seed": base_seed + 1000 * (index + 1)}
        procs.append(context.Process(target=worker_main, args=(payload, events, stop), name=f"ablate-worker-{index}"))
    for proc in procs:
        proc.start()
    crashed = set()

    def handle(event: tuple) -> None:
        if event[0] == "outcome":
            collect(event[1])
        elif event[0] == "note":
            note(event[1])
        elif event[0] == "crashed":
            crashed.add(event[1])
            note(f"worker pid {event[1]} stopped: {event[2]}")

    try:
        while any(proc.is_alive() for proc in procs):
            if session.should_stop():
                stop.set()
            try:
                handle(events.get(timeout=0.5))
            except queue.Empty:
                pass
            display.refresh(lambda: _snapshot(session))
    except KeyboardInterrupt:
        for proc in procs:
            proc.terminate()
        raise
    finally:
        while True:
            try:
                handle(events.get_nowait())
            except queue.Empty:
                break
        for proc in procs:
            proc.join()
    if session.should_stop():
        raise KeyboardInterrupt
    for proc in procs:
        if proc.exitcode != 0 and proc.pid not in crashed:
            note(f"worker pid {proc.pid} exited with code {proc.exitcode}")


# ------------------------------------------------------------------------------ progress
@dataclass(frozen=True)
class _Snapshot:
    total: int
    done: int
    running: int
    failed: int
    pending: int
    mean_trial_s: float | None
    current: tuple[tuple[str, int, int], ...]  # (trial key, epoch, epochs) of live running trials


def _snapshot(session: _Session) -> _Snapshot:
    trials = session.all_trials()
    now = time.time()
    attempts = _attempts(trials)
    spec = session.spec
    slots = list(session.trials_by_key) if spec.search is None else list(attempts)
    states = [_slot_state(attempts.get(slot, []), now, session.stale_after_s) for slot in slots]
    count = defaultdict(int)
    for state in states:
        count[state.state] += 1
    total = len(slots) if spec.search is None else max(spec.search.n_trials, len(slots))
    pending = count[PENDING] + (total - len(slots))
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials
                 if t.state == TrialState.COMPLETE and t.datetime_start and t.datetime_complete]
    current = tuple((s.trial.user_attrs.get("trial_key", ""), s.trial.user_attrs.get("epoch", 0),
                     s.trial.user_attrs.get("epochs", 0)) for s in states if s.state == RUNNING)
    return _Snapshot(total, count[DONE], count[RUNNING], count[FAILED], pending,
                     sum(durations) / len(durations) if durations else None, current)


class _Display:
    """A status line (done/running/failed of total, ETA, the running trials' epochs) and
    one line per finished trial through `echo`."""

    def __init__(self, name: str, total: int, jobs: int, bar: bool, echo: Callable[[str], None]):
        self.echo = echo
        self.jobs = jobs
        self.bar = None
        self.last = 0.0
        if bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=name, unit="trial", dynamic_ncols=True, leave=False,
                            bar_format="{desc}: {n_fmt}/{total_fmt} |{bar:16}|{postfix}")

    def line(self, text: str) -> None:
        if self.bar is None:
            self.echo(text)
            return
        with self.bar.external_write_mode():
            self.echo(text)

    def refresh(self, snapshot: Callable[[], _Snapshot], force: bool = False) -> None:
        """Redraw the status line (at most twice a second unless forced); `snapshot` reads
        the storage, so it is called only when the line is drawn."""
        if self.bar is None or (not force and time.monotonic() - self.last < 0.5):
            return
        self.last = time.monotonic()
        snap = snapshot()
        eta = None
        if snap.mean_trial_s is not None:
            left = snap.pending + snap.running
            eta = snap.mean_trial_s * left / max(1, min(self.jobs, left))
        parts = [f"done {snap.done}", f"running {snap.running}", f"failed {snap.failed}", f"ETA {_duration(eta)}"]
        parts += [f"{key} epoch {epoch}/{epochs}" for key, epoch, epochs in snap.current[:3]]
        self.bar.total = snap.total
        self.bar.n = snap.done + snap.failed
        self.bar.set_postfix_str(" · ".join(parts), refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------------ running
@dataclass
class RunSummary:
    """What one `ablate run` did."""

    study: str
    storage: str  # the Optuna storage URL, password masked
    total: int  # trials in the study (grid: cells × seeds; search: the budget)
    already_finished: int  # done before this run started
    trained: int = 0  # finished by this process (its workers included)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (trial, reason) failed in this run
    pruned: int = 0
    duplicates: int = 0  # claims given up because another attempt had the key
    done: int = 0  # done at the end
    pending: int = 0  # still to train at the end (failed and not retried excluded)
    failed_total: int = 0  # failed at the end
    notes: list[str] = field(default_factory=list)  # workers that died, runs ended, ...
    wall_time_s: float = 0.0

    def render(self) -> str:
        if self.trained == 0 and not self.failed and not self.pruned:
            return _nothing_to_train(self)
        lines = [f"study {self.study}: trained {self.trained} trial{'s' if self.trained != 1 else ''}"
                 + (f", {self.pruned} pruned" if self.pruned else "")
                 + (f", {len(self.failed)} failed" if self.failed else "")
                 + f" in {_duration(self.wall_time_s)}; {self.done}/{self.total} done"
                 + (f", {self.failed_total} failed" if self.failed_total else "")
                 + (f", {self.pending} pending" if self.pending else "")]
        lines += [f"  failed: {label}: {reason}" for label, reason in self.failed]
        if self.failed_total:
            lines.append("  `ablate status` lists the failures; `ablate run --retry-failed` trains them again")
        return "\n".join(lines)


def _nothing_to_train(summary: RunSummary) -> str:
    if summary.done == summary.total:
        return f"study {summary.study}: all {summary.total} trials finished; nothing to train"
    parts = [f"{summary.done} of {summary.total} trials finished"]
    if summary.failed_total:
        parts.append(f"{summary.failed_total} failed (`ablate run --retry-failed` trains them again)")
    running = summary.total - summary.done - summary.failed_total - summary.pending
    if running:
        parts.append(f"{running} running in other processes")
    return f"study {summary.study}: {', '.join(parts)}; nothing to train"


def run_study(spec: StudySpec, *, jobs: int = 1, retry_failed: bool = False, storage: str | None = None,
              tracking_uri: str | None = None, progress: bool = True, echo: Callable[[str], None] = print,
              stale_after_s: float = STALE_AFTER_S) -> RunSummary:
    """Train every trial of `spec` that is not finished yet, `jobs` at a time (jobs 1:
    in this process; more: in spawned worker processes), and return what happened.

    Trials whose worker died are failed and resumed from their last epoch checkpoint;
    failed trials stay failed unless `retry_failed`. Prints one line per finished trial
    and a final summary through `echo`, and a status line when `progress`. The first
    Ctrl-C stops every running trial at the end of its epoch, records it as interrupted
    (the next run resumes it) and raises KeyboardInterrupt; a second stops at once.
    `storage` and `tracking_uri` override the study file (see `resolve_storage`);
    `stale_after_s` is how long a worker on another host may go without a heartbeat.
    """
    if jobs < 1:
        raise UserInputError(f"--jobs must be at least 1, got {jobs}")
    started = time.time()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = resolve_storage(spec, storage, jobs)
    tracking = resolve_tracking_uri(spec, tracking_uri)
    session = _Session(spec, url, tracking, stale_after_s=stale_after_s)
    notes = session.fail_stale() + session.end_orphan_runs()
    session.enqueue_missing(retry_failed)
    for note in notes:
        echo(note)
    before = _snapshot(session)
    summary = RunSummary(spec.name, mask_url(url), before.total, before.done, notes=notes)
    workers = min(jobs, before.pending)
    if jobs > 1 and _sqlite_path(url) is not None and workers > 1:
        echo(f"note: {workers} processes share the SQLite storage {url}; SQLite serialises their writes "
             "(a journal file or a database server does not)")
    if workers > 0:
        _train_pending(session, workers, before, summary, tracking, progress, echo)
    after = _snapshot(session)
    summary.done, summary.pending, summary.failed_total = after.done, after.pending, after.failed
    summary.wall_time_s = time.time() - started
    echo(summary.render())
    return summary


def _train_pending(session: _Session, workers: int, before: _Snapshot, summary: RunSummary, tracking_uri: str,
                   progress: bool, echo: Callable[[str], None]) -> None:
    """Train what is queued with `workers` processes (this one if 1), updating `summary`
    and the display as trials end."""
    session.tracker.set_parent_status(session.parent_id, "RUNNING")
    display = _Display(session.spec.name, before.total, workers, progress, echo)

    def collect(outcome: TrialOutcome) -> None:
        summary.trained += outcome.status == "finished"
        summary.pruned += outcome.status == "pruned"
        summary.duplicates += outcome.status == "duplicate"
        if outcome.status == "failed":
            summary.failed.append((f"{outcome.label} ({outcome.key})", outcome.reason))
        if outcome.status == "duplicate":
            return
        now = _snapshot(session)  # counts every process's trials, not only this one's
        display.line(outcome.line(now.done + now.failed, now.total))
        display.refresh(lambda: now, force=True)

    def note(text: str) -> None:
        summary.notes.append(text)
        display.line(text)

    session.notify = note
    session.on_epoch = lambda: display.refresh(lambda: _snapshot(session))
    display.refresh(lambda: before, force=True)
    try:
        with StopRequest(display.line) as stop:
            session.should_stop = stop
            if workers == 1:
                session.work(collect)
            else:
                _run_workers(session, workers, tracking_uri, display, collect, note)
    except KeyboardInterrupt:
        _end_parent_run(session, "KILLED")
        raise
    finally:
        display.close()
    _end_parent_run(session, "FINISHED")


def _end_parent_run(session: _Session, status: str) -> None:
    """End the parent run unless trials of the study still run elsewhere."""
    if _snapshot(session).running == 0:
        session.tracker.set_parent_status(session.parent_id, status)


# ------------------------------------------------------------------------------ status
@dataclass(frozen=True)
class TrialStatus:
    """The state of one trial (grid: cell × seed; search: one sampled point)."""

    key: str
    cell_id: str
    seed: int
    factors: dict  # grid: the cell's varied settings; search: the sampled ones
    state: str  # "done" | "running" | "failed" | "pending"
    detail: str = ""  # failure reason, why pending, or which worker runs it
    number: int | None = None  # the Optuna trial number of the attempt shown
    value: float | None = None  # the (first) objective of a done trial
    epoch: int | None = None
    epochs: int | None = None


@dataclass(frozen=True)
class StatusReport:
    study: str
    storage: str  # password masked
    total: int
    trials: tuple[TrialStatus, ...]
    search: bool = False

    def counts(self) -> dict[str, int]:
        counts = {DONE: 0, RUNNING: 0, FAILED: 0, PENDING: 0}
        for trial in self.trials:
            counts[trial.state] += 1
        counts[PENDING] += self.total - len(self.trials)
        return counts

    def render(self) -> str:
        counts = self.counts()
        lines = [f"study {self.study} ({self.storage}): {self.total} trials — "
                 + ", ".join(f"{counts[s]} {s}" for s in (DONE, RUNNING, FAILED, PENDING))]
        if self.search:
            for trial in self.trials:
                lines.append(f"  trial {trial.number}  {_row(trial)}  "
                             + " ".join(f"{k}={v}" for k, v in trial.factors.items()))
            if self.total > len(self.trials):
                lines.append(f"  {self.total - len(self.trials)} more to sample")
            return "\n".join(lines)
        cells: dict[str, list[TrialStatus]] = {}
        for trial in self.trials:
            cells.setdefault(trial.cell_id, []).append(trial)
        for cell, rows in cells.items():
            described = ", ".join(f"{k}={v}" for k, v in rows[0].factors.items()) or "(settings only)"
            lines.append(f"  cell {cell}  {described}")
            lines += [f"    seed {row.seed:<3} {_row(row)}" for row in rows]
        return "\n".join(lines)


def _row(trial: TrialStatus) -> str:
    text = f"{trial.state:<8}"
    if trial.state == DONE and trial.value is not None:
        text += f" objective {trial.value:.4g}"
    if trial.state == RUNNING and trial.epochs:
        text += f" epoch {trial.epoch or 0}/{trial.epochs}"
    if trial.detail:
        text += f" {trial.detail}"
    if trial.number is not None:
        text += f"  (trial {trial.number})"
    return text


def study_status(spec: StudySpec, *, storage: str | None = None,
                 stale_after_s: float = STALE_AFTER_S) -> StatusReport:
    """Where every trial of `spec` stands, read from its storage without changing it
    (a study never run has every trial pending, and no storage is created)."""
    url = resolve_storage(spec, storage, 1)
    trials: list[FrozenTrial] = []
    if _storage_exists(url):
        store = _open_storage(url)
        try:
            trials = store.get_all_trials(store.get_study_id_from_name(spec.name), deepcopy=False)
        except KeyError:  # the storage has no study of this name yet
            trials = []
    attempts, now = _attempts(trials), time.time()
    rows = []
    if spec.search is None:
        for key, trial in ((t.key, t) for t in spec.trials):
            rows.append(_status_row(key, trial.cell_id, trial.seed, trial.factors,
                                    _slot_state(attempts.get(key, []), now, stale_after_s)))
        return StatusReport(spec.name, mask_url(url), len(spec.trials), tuple(rows))
    for slot, tries in sorted(attempts.items(), key=lambda item: item[1][0].number):
        first = tries[0]
        rows.append(_status_row(first.user_attrs.get("trial_key", slot), first.user_attrs.get("cell_id", ""),
                                first.user_attrs.get("seed", spec.seeds[0]), dict(tries[-1].params),
                                _slot_state(tries, now, stale_after_s)))
    return StatusReport(spec.name, mask_url(url), max(spec.search.n_trials, len(rows)), tuple(rows), search=True)


def _status_row(key: str, cell: str, seed: int, factors: dict, slot: _SlotState) -> TrialStatus:
    trial = slot.trial
    attrs = trial.user_attrs if trial is not None else {}
    value = trial.values[0] if trial is not None and trial.values else None
    return TrialStatus(key, cell, seed, factors, slot.state, slot.detail, trial.number if trial else None,
                       value, attrs.get("epoch"), attrs.get("epochs"))
