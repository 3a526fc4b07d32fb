"""`ablate status`: where every trial of a study stands, read without changing anything."""

from __future__ import annotations

import time
from dataclasses import dataclass

from optuna.trial import FrozenTrial

from ..spec import StudySpec
from ..urls import mask_url
from .attempts import DONE, FAILED, PENDING, RUNNING, STALE_AFTER_S, SlotState, attempts_by_slot, slot_state
from .storage import resolve_storage, storage_exists
from .store import TrialStore


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
    aliases: tuple[tuple[dict, dict], ...] = ()  # (factors of a cell, of the cell whose trials it shares)

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
            lines.append(f"  cell {cell}  {_described(rows[0].factors)}")
            lines += [f"    seed {row.seed:<3} {_row(row)}" for row in rows]
        for alias, trained in self.aliases:
            lines.append(f"  {_described(alias)}: same network as {_described(trained)}, shares its trials")
        return "\n".join(lines)


def _described(factors: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in factors.items()) or "(settings only)"


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
    if storage_exists(url):
        store = TrialStore(url)
        try:
            trials = store.trials(store.study_id(spec.name))
        except KeyError:  # the storage has no study of this name yet
            trials = []
    attempts, now = attempts_by_slot(trials), time.time()
    rows = []
    if spec.search is None:
        for trial in spec.trials:
            rows.append(_status_row(trial.key, trial.cell_id, trial.seed, trial.factors,
                                    slot_state(attempts.get(trial.key, []), now, stale_after_s)))
        factors = {entry.cell_id: entry.factors for entry in spec.layout}
        aliases = tuple((factors[alias], factors[trained]) for alias, trained in spec.aliases().items())
        return StatusReport(spec.name, mask_url(url), len(spec.trials), tuple(rows), aliases=aliases)
    for slot, tries in sorted(attempts.items(), key=lambda item: item[1][0].number):
        first = tries[0]
        rows.append(_status_row(first.user_attrs.get("trial_key", slot), first.user_attrs.get("cell_id", ""),
                                first.user_attrs.get("seed", spec.seeds[0]), dict(tries[-1].params),
                                slot_state(tries, now, stale_after_s)))
    return StatusReport(spec.name, mask_url(url), max(spec.search.n_trials, len(rows)), tuple(rows), search=True)


def _status_row(key: str, cell: str, seed: int, factors: dict, slot: SlotState) -> TrialStatus:
    trial = slot.trial
    attrs = trial.user_attrs if trial is not None else {}
    value = trial.values[0] if trial is not None and trial.values else None
    return TrialStatus(key, cell, seed, factors, slot.state, slot.detail, trial.number if trial else None,
                       value, attrs.get("epoch"), attrs.get("epochs"))
