"""How far a study is: its slots counted by state, the running trials' epochs, and the
time left, read from the storage."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from optuna.trial import TrialState

from .attempts import DONE, FAILED, PENDING, RUNNING, attempts_by_slot, slot_state
from .session import Session


@dataclass(frozen=True)
class Running:
    """One live trial as the status line shows it."""

    key: str
    label: str  # its cell by factors and its seed: "auglocal d=3 · s1"
    epoch: int
    epochs: int
    val_acc: float | None  # of its last finished epoch (fraction)


@dataclass(frozen=True)
class Snapshot:
    total: int
    done: int
    running: int
    failed: int
    pending: int
    mean_trial_s: float | None
    current: tuple[Running, ...]  # live running trials
    epochs_left: int = 0  # epochs still to train: running trials' rest and every pending trial's
    epoch_s: float | None = None  # seconds one epoch takes, from the epochs finished so far
    failures: tuple[tuple[str, str], ...] = ()  # (trial, reason) of every failed slot

    @property
    def eta_s(self) -> float | None:
        """Seconds left for one worker; None before any epoch finished."""
        return None if self.epoch_s is None else self.epochs_left * self.epoch_s


def snapshot(session: Session) -> Snapshot:
    """Counts over every process's trials, the mean time of a finished trial and of a
    finished epoch, and the epochs of running ones."""
    trials = session.all_trials()
    now = time.time()
    attempts = attempts_by_slot(trials)
    spec = session.spec
    slots = list(session.trials_by_key) if spec.search is None else list(attempts)
    states = [slot_state(attempts.get(slot, []), now, session.stale_after_s) for slot in slots]
    count = defaultdict(int)
    for state in states:
        count[state.state] += 1
    total = len(slots) if spec.search is None else max(spec.search.n_trials, len(slots))
    pending = count[PENDING] + (total - len(slots))
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.datetime_start and t.datetime_complete]
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in complete]
    live = [s.trial for s in states if s.state == RUNNING]
    current = tuple(Running(key := t.user_attrs.get("trial_key", ""), t.user_attrs.get("label", key),
                            t.user_attrs.get("epoch", 0), t.user_attrs.get("epochs", 0), t.user_attrs.get("val_acc"))
                    for t in live)
    # seconds per epoch: every finished epoch counts once, the finished trials' and the running ones'
    epoch_times = [(t.user_attrs["time_per_epoch_s"], t.user_attrs.get("epochs_completed") or 1)
                   for t in complete if t.user_attrs.get("time_per_epoch_s")]
    epoch_times += [(t.user_attrs["epoch_s"], t.user_attrs["epoch"]) for t in live
                    if t.user_attrs.get("epoch_s") and t.user_attrs.get("epoch")]
    weight = sum(n for _, n in epoch_times)
    epoch_s = sum(s * n for s, n in epoch_times) / weight if weight else None
    failures = tuple((_trial_label(s.trial), s.detail) for s in states if s.state == FAILED)
    per_trial = _epochs_per_trial(session)
    epochs_left = sum(max(0, r.epochs - r.epoch) for r in current) + pending * per_trial
    return Snapshot(total, count[DONE], count[RUNNING], count[FAILED], pending,
                    sum(durations) / len(durations) if durations else None, current, epochs_left, epoch_s,
                    failures)


def _trial_label(trial) -> str:
    """How a run's summary names a trial: its cell and seed, and its key."""
    key = trial.user_attrs.get("trial_key", f"#{trial.number}")
    return f"{trial.user_attrs.get('label', key)} ({key})"


def _epochs_per_trial(session: Session) -> int:
    spec = session.spec
    if spec.trials:
        return round(sum(t.config.epochs for t in spec.trials) / len(spec.trials))
    return int(spec.fixed.get("epochs", 10))
