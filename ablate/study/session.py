"""One process's connection to a study, and the loop that claims and trains its trials.

Every trial of the spec (cell × seed, `Trial.key`) is one Optuna trial with the user
attribute "trial_key"; no sampler is involved. `ablate run` enqueues a WAITING trial for
every key that has none yet, and workers claim WAITING trials by moving them to RUNNING
through the storage, which succeeds for exactly one caller (a row lock in an RDB, the
order of the log in a journal). Two processes that enqueue the same missing key at the
same moment leave two WAITING trials; a worker that claims one while another trial of
its key is finished, or running with a lower number, marks its own FAIL with user
attribute "duplicate_of" and moves on. Status and counts ignore duplicates.

Every `ablate run`, and every worker between two trials, fails running trials whose
worker is gone (reason "worker died (pid N on HOST)"), ends their MLflow runs as KILLED
and enqueues their keys again with "resume_from" = their checkpoint folder
(<study dir>/checkpoints/<key>/), so the new attempt continues from the last finished
epoch. Search studies ask the sampler for new trials until the budget is spent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState, create_trial

from ..engine.stopping import StopRequest
from ..errors import UserInputError, one_line
from ..spec import StudySpec
from ..tracking import Tracker, finished_trial_runs, latest_per_trial, run_name
from ..urls import mask_url
from .analyses import analyse_ready
from .attempts import STALE_AFTER_S, attempts_by_slot, is_duplicate, resumable, slot, staleness
from .optimizer import open_study, suggest
from .outcome import TrialOutcome
from .store import TrialStore
from .training import TrialTakenOver, train_claimed

HEARTBEAT_S = 10.0


class Session:
    """One process's connection to a study: its Optuna storage and MLflow tracker, and
    the loop that claims and trains trials until none is left."""

    def __init__(self, spec: StudySpec, storage_url: str, tracking_uri: str, *, parent_id: str | None = None,
                 stale_after_s: float = STALE_AFTER_S, sampler_seed: int | None = None,
                 stop: StopRequest | None = None):
        self.spec = spec
        self.stop = stop or StopRequest()
        self.notify: Callable[[str], None] = lambda text: None  # stale trials found between trials
        self.on_epoch: Callable[[], None] = lambda: None
        self.on_wait: Callable[[int], None] = lambda running: None  # nothing to claim, N trials run elsewhere
        self.storage_url = storage_url
        self.stale_after_s = stale_after_s
        self.heartbeat_s = min(HEARTBEAT_S, stale_after_s / 4)
        self.store = TrialStore(storage_url)
        seed = spec.seeds[0] if sampler_seed is None else sampler_seed
        self.study = open_study(self.store, spec, seed)
        self.study_id = self.store.study_id(spec.name)
        self.tracker = Tracker(tracking_uri, spec.experiment)
        self.parent_id = parent_id or self.tracker.parent_run_id(spec.name, {"ablate.optuna_storage": storage_url})
        if parent_id is None:  # the process that starts the study, not each of its workers
            self.tracker.describe_study(self.parent_id, spec)
        self.trials_by_key = {trial.key: trial for trial in spec.trials}
        self.analysed: set[str] = set()  # runs whose analysis this process attempted

    # ---------------------------------------------------------------- storage helpers
    def all_trials(self) -> list[FrozenTrial]:
        return self.store.trials(self.study_id)

    def set_attrs(self, trial: FrozenTrial, attrs: dict) -> None:
        try:
            for key, value in attrs.items():
                self.store.set_attr(trial._trial_id, key, value)
        except UpdateFinishedTrialError:
            raise TrialTakenOver(f"trial {trial.number} was ended by another process (its worker was "
                                 "taken for dead)") from None

    def end(self, trial: FrozenTrial, state: TrialState, attrs: dict, values: list[float] | None = None) -> bool:
        """Write `attrs`, then finish the trial; False if another process finished it first."""
        def tell() -> bool:
            # retried: each try first reads whether an earlier one got through before
            # the connection dropped (then the trial is in the state told, by us)
            found = self.store.storage.get_trial(trial._trial_id).state
            if found != TrialState.RUNNING:
                return found == state and bool(told)
            told.append(True)
            self.study.tell(trial.number, values=values, state=state)
            return True

        told: list[bool] = []
        try:
            self.set_attrs(trial, attrs)
            return self.store.patient(tell)
        except TrialTakenOver:
            return False
        except UpdateFinishedTrialError:  # another process ended it between the read and the tell
            return False

    def checkpoint_dir(self, slot: str) -> Path:
        return self.spec.directory / "checkpoints" / slot

    def stop_if_asked(self) -> None:
        if self.stop.requested:
            raise self.stop.interruption()

    # ---------------------------------------------------------------- maintenance
    def fail_stale(self) -> list[str]:
        """Fail RUNNING trials whose worker is gone and end their MLflow runs; one note each."""
        now, heard_since = time.time(), self._heard_since()
        notes, run_ids = [], []
        for trial in self.all_trials():
            if trial.state != TrialState.RUNNING:
                continue
            reason = staleness(trial, now, self.stale_after_s, heard_since)
            if reason is None:
                continue
            if not self.end(trial, TrialState.FAIL, {"reason": reason, "interrupted": "died"}):
                continue  # another process failed it (or it finished) in the meantime
            key = trial.user_attrs.get("trial_key", slot(trial))
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
                    t.state == TrialState.RUNNING and staleness(t, now, self.stale_after_s) is None)]
                owned["protected"] = {t.user_attrs.get("mlflow_run_id") for t in live}
                owned["live_keys"] = {t.user_attrs.get("trial_key") for t in live if t.state == TrialState.RUNNING}
            return run_id in owned["protected"] or (run_id not in owned["known"] and trial_key in owned["live_keys"])

        ended = self.tracker.mark_stale_runs(self.spec.name, is_alive)
        return [f"MLflow run {run_id} had no live trial; ended as KILLED" for run_id in ended]

    def reconcile(self) -> list[str]:
        """Make the Optuna storage agree with the MLflow store, either of which may have
        been deleted or swapped: a grid trial whose latest MLflow run FINISHED, and that the
        storage holds neither done, queued nor running, is recorded COMPLETE from that run
        (never trained again); COMPLETE trials without a finished MLflow run are named in
        one note with the fix. Returns the notes."""
        runs = finished_trial_runs(self.tracker.tracking_uri, self.spec.experiment, self.spec.name)
        attempts = attempts_by_slot(self.all_trials())
        notes, restored = [], 0
        busy = {TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING}
        for key, run in latest_per_trial(runs).items() if self.spec.search is None else ():
            trial = self.trials_by_key.get(key)
            value = run.metrics.get("best_val_acc", run.metrics.get("final_test_acc"))
            if trial is None or value is None or {t.state for t in attempts.get(key, [])} & busy:
                continue
            attrs = {"trial_key": key, "slot": key, "cell_id": trial.cell_id, "seed": trial.seed,
                     "label": run.label, "mlflow_run_id": run.run_id, "restored_from": "mlflow",
                     **{name: run.metrics[name] for name in ("best_val_acc", "final_test_acc") if name in run.metrics}}
            self.store.patient(self.study.add_trial, create_trial(state=TrialState.COMPLETE, value=value,
                                                                  user_attrs=attrs))
            restored += 1
        if restored:
            notes.append(f"{restored} trial(s) finished in MLflow but unknown to the Optuna storage: recorded done "
                         "from their runs, not trained again")
        finished = {run.run_id for run in runs}
        orphans = [t for t in self.all_trials() if t.state == TrialState.COMPLETE and not is_duplicate(t)
                   and t.user_attrs.get("mlflow_run_id", "") not in finished]
        if orphans:
            notes.append(f"{len(orphans)} finished trial(s) have no finished run in the MLflow store "
                         f"{mask_url(self.tracker.tracking_uri)} (e.g. {orphans[0].user_attrs.get('trial_key')}), so "
                         "no report shows them: point --tracking-uri at the store that holds them, or delete the "
                         f"Optuna storage {mask_url(self.storage_url)} to train them again")
        return notes

    def enqueue_missing(self, retry_failed: bool = False) -> None:
        """Queue what should train and is neither queued, running nor done: new keys,
        interrupted attempts (to resume) and, with retry_failed, failed keys."""
        attempts = attempts_by_slot(self.all_trials())
        if self.spec.search is None:
            for key, trial in self.trials_by_key.items():
                fresh = {"trial_key": key, "slot": key, "cell_id": trial.cell_id, "seed": trial.seed}
                attrs = self._next_attempt(attempts.get(key, []), fresh, retry_failed)
                if attrs is not None:
                    self._enqueue({}, attrs)
            return
        for tries in attempts.values():
            first = tries[0].user_attrs
            fresh = {k: first[k] for k in ("trial_key", "slot", "cell_id", "seed") if k in first}
            attrs = self._next_attempt(tries, fresh, retry_failed)
            if attrs is not None and tries[-1].params:
                self._enqueue(dict(tries[-1].params), attrs)

    def _enqueue(self, params: dict, attrs: dict) -> None:
        """Queue a WAITING trial. Retried: a retry whose first try got through leaves a
        second WAITING trial of the same slot, which its claimer gives up as a duplicate
        (as when two processes enqueue one key at once)."""
        self.store.patient(self.study.enqueue_trial, params, user_attrs=attrs)

    def _next_attempt(self, tries: list[FrozenTrial], fresh: dict, retry_failed: bool) -> dict | None:
        if not tries:
            return fresh
        states = {t.state for t in tries}
        if states & {TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING}:
            return None
        last = tries[-1]
        if last.user_attrs.get("interrupted") and (resumable(tries) or retry_failed):
            resume_from = last.user_attrs.get("checkpoint_dir") or str(self.checkpoint_dir(fresh["slot"]))
            return {**fresh, "resume_from": resume_from}
        return fresh if retry_failed else None

    # ---------------------------------------------------------------- the loop
    def work(self, emit: Callable[[TrialOutcome], None], retry_failed: bool = False) -> None:
        """Train trials until nothing is left to claim (grid) or the budget is spent
        (search), and no trial of the study runs in another process any more."""
        next_trial = self._next_grid_trial if self.spec.search is None else self._next_search_trial
        first, waiting = True, False
        while True:
            self.stop_if_asked()
            for note in self.fail_stale():
                self.notify(note)
            self.enqueue_missing(retry_failed and first)
            first = False
            if next_trial(emit):
                waiting = False
                analyse_ready(self.spec, self.tracker.tracking_uri, self.notify, self.analysed)
                continue
            # Nothing to claim, but trials may still run in other processes: stay to take
            # over any whose worker dies, so that a study ends complete while one worker lives.
            running = self._running_elsewhere()
            if running == 0:
                return
            if not waiting:
                self.on_wait(running)
                waiting = True
            self._pause(self.heartbeat_s)

    def _running_elsewhere(self) -> int:
        """Trials of this study that are RUNNING (after `fail_stale`: in live processes)."""
        search = self.spec.search is not None
        return sum(1 for t in self.all_trials() if t.state == TrialState.RUNNING and not is_duplicate(t)
                   and (search or t.user_attrs.get("trial_key") in self.trials_by_key))

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.stop_if_asked()
            self.on_epoch()  # keeps the status line current
            time.sleep(min(0.5, left))

    def _heard_since(self) -> float | None:
        """When this process last got through to the storage after an outage: nobody could
        leave a heartbeat during it, so silence before then proves no worker dead."""
        return self.store.recovered_at

    def _next_grid_trial(self, emit: Callable[[TrialOutcome], None]) -> bool:
        """Claim and train one queued trial; False when none is left."""
        claimed = self._claim()
        if claimed is None:
            return False
        trial = self.trials_by_key[claimed.user_attrs["trial_key"]]
        duplicate = self._duplicate_of(claimed)
        if duplicate is not None:
            reason = self._give_up_duplicate(claimed, duplicate)
            emit(TrialOutcome(trial.key, run_name(trial.factors, trial.seed), claimed.number, "duplicate", reason))
            return True
        emit(train_claimed(self, claimed, trial))
        return True

    def _next_search_trial(self, emit: Callable[[TrialOutcome], None]) -> bool:
        """Ask the sampler (or take a queued point) and train it; False when the budget is spent."""
        trials = self.all_trials()
        waiting = any(t.state == TrialState.WAITING for t in trials)
        used = len({slot(t) or f"#{t.number}" for t in trials if not is_duplicate(t)})
        if not waiting and used >= self.spec.search.n_trials:
            return False
        # not retried: asking creates a trial (or claims a queued one); should the connection
        # drop after that, the trial has no worker and is failed as stale
        asked = self.study.ask()
        claimed = self.store.trial(self.store.trial_id(self.study_id, asked.number))
        point = slot(claimed) or f"trial-{claimed.number}"  # a new point, or a requeued one's slot
        duplicate = self._duplicate_of(claimed) if slot(claimed) else None
        if duplicate is not None:
            self._give_up_duplicate(claimed, duplicate)
            return True
        values = {key: suggest(asked, key, param) for key, param in self.spec.search.params.items()}
        try:
            trial = self.spec.trial(values, self.spec.seeds[0])
        except UserInputError as err:
            reason = f"sampled settings cannot be trained: {one_line(err)}"
            self.end(claimed, TrialState.FAIL, {"slot": point, "reason": reason})
            emit(TrialOutcome(point, str(values), claimed.number, "failed", reason))
            return True
        self.set_attrs(claimed, {"slot": point, "trial_key": trial.key, "cell_id": trial.cell_id,
                                 "seed": trial.seed})
        emit(train_claimed(self, self.store.trial(claimed._trial_id), trial, asked))
        return True

    # ---------------------------------------------------------------- claiming
    def _claim(self) -> FrozenTrial | None:
        """Move one WAITING trial of this spec to RUNNING; None when none is left."""
        for trial in self._waiting():
            if self.store.claim(trial._trial_id):
                return self.store.trial(trial._trial_id)
        return None

    def _waiting(self) -> list[FrozenTrial]:
        """The WAITING trials this process could claim: those resuming an interrupted
        attempt first (their checkpoints hold epochs already paid for), then oldest first."""
        waiting = self.store.trials(self.study_id, states=(TrialState.WAITING,))
        # a trial queued by a version of the study file that had another key is not ours
        ours = [t for t in waiting if t.user_attrs.get("trial_key") in self.trials_by_key]
        return sorted(ours, key=lambda t: ("resume_from" not in t.user_attrs, t.number))

    def _duplicate_of(self, claimed: FrozenTrial) -> FrozenTrial | None:
        """Another attempt at the same key that is finished, or running with a lower number."""
        now = time.time()
        for other in attempts_by_slot(self.all_trials()).get(slot(claimed), []):
            if other.number == claimed.number:
                continue
            if other.state == TrialState.COMPLETE:
                return other
            if (other.state == TrialState.RUNNING and other.number < claimed.number
                    and staleness(other, now, self.stale_after_s) is None):
                return other
        return None

    def _give_up_duplicate(self, claimed: FrozenTrial, duplicate: FrozenTrial) -> str:
        reason = f"duplicate of trial {duplicate.number}"
        self.end(claimed, TrialState.FAIL, {"duplicate_of": duplicate.number, "reason": reason})
        return reason
