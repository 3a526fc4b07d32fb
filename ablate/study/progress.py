"""How far a study is: its slots counted by state, read from the storage."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from optuna.trial import TrialState

from .attempts import DONE, FAILED, PENDING, RUNNING, attempts_by_slot, slot_state
from .session import Session


@dataclass(frozen=True)
class Snapshot:
    total: int
    done: int
    running: int
    failed: int
    pending: int
    mean_trial_s: float | None
    current: tuple[tuple[str, int, int], ...]  # (trial key, epoch, epochs) of live running trials


def snapshot(session: Session) -> Snapshot:
    """Counts over every process's trials, the mean time of a finished trial, and the
    epochs of running ones."""
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
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials
                 if t.state == TrialState.COMPLETE and t.datetime_start and t.datetime_complete]
    current = tuple((s.trial.user_attrs.get("trial_key", ""), s.trial.user_attrs.get("epoch", 0),
                     s.trial.user_attrs.get("epochs", 0)) for s in states if s.state == RUNNING)
    return Snapshot(total, count[DONE], count[RUNNING], count[FAILED], pending,
                    sum(durations) / len(durations) if durations else None, current)
