"""The Optuna storage of one study as the study machinery uses it: the calls it makes,
each saying whether it rides out an outage of the database (ablate.outage) and why a
second run of it is harmless. Optuna's own `Study` calls go through the same patience
at their call sites (`patient`)."""

from __future__ import annotations

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from ..outage import Patience
from .storage import open_storage


class TrialStore:
    def __init__(self, url: str):
        self.url = url
        self.storage: BaseStorage = open_storage(url)
        self.patience = Patience(f"the Optuna storage {url}")

    def patient(self, function, *args, **kwargs):
        """`function(*args, **kwargs)` through an outage; only for calls safe to repeat."""
        return self.patience.call(function, *args, **kwargs)

    @property
    def recovered_at(self) -> float | None:
        """When a call last got through after an outage (wall clock); None if none failed."""
        return self.patience.recovered_at

    # ---------------------------------------------------------------- reads: always safe to repeat
    def study_id(self, name: str) -> int:
        return self.patient(self.storage.get_study_id_from_name, name)

    def trials(self, study_id: int, states: tuple[TrialState, ...] | None = None) -> list[FrozenTrial]:
        return self.patient(self.storage.get_all_trials, study_id, deepcopy=False, states=states)

    def trial(self, trial_id: int) -> FrozenTrial:
        return self.patient(self.storage.get_trial, trial_id)

    def trial_id(self, study_id: int, number: int) -> int:
        return self.patient(self.storage.get_trial_id_from_study_id_trial_number, study_id, number)

    # ---------------------------------------------------------------- writes
    def set_attr(self, trial_id: int, key: str, value) -> None:
        """Retried: writing the same value twice is writing it once. Raises
        UpdateFinishedTrialError when the trial was finished (by another process)."""
        self.patient(self.storage.set_trial_user_attr, trial_id, key, value)

    def claim(self, trial_id: int) -> bool:
        """Move a WAITING trial to RUNNING; True for exactly one caller. This is what
        Optuna's private `Study._pop_waiting_trial_id` does for one trial (the database
        row lock, or the journal's order, decides), without asking its sampler.

        Retried: a retry after a first try that got through answers False, as for any
        trial already claimed, so a retry never claims a second trial; the trial it did
        claim then has no worker and is failed as stale (no heartbeat) and resumed."""
        try:
            return self.patient(self.storage.set_trial_state_values, trial_id, TrialState.RUNNING)
        except UpdateFinishedTrialError:  # finished by another process meanwhile
            return False
