"""Reading a study's Optuna trials: which slot each is an attempt at, whether its worker
is still alive, and where each slot stands (done / running / failed / pending).

A slot is a grid key (cell × seed, `Trial.key`) or the first attempt of a searched point;
every retry or resume of it is a new Optuna trial with the same user attribute "slot".
A running trial carries "worker_host", "worker_pid", "worker_pid_scope" and a
"heartbeat" (unix time, refreshed every few seconds by a thread of its worker). Its
worker is gone when its pid is dead in this process's pid scope (same kernel boot and pid
namespace, see `ablate.study.liveness.PID_SCOPE`), or when its heartbeat is older than
`stale_after_s`: the only sign a worker on another host (or in another container) can
give. A slot whose workers died MAX_WORKER_DEATHS times is left failed (a trial that
kills its worker, e.g. out of memory, would otherwise run forever).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState

from .liveness import PID_SCOPE, pid_alive

STALE_AFTER_S = 120.0  # how long a worker on another host may go without a heartbeat
MAX_WORKER_DEATHS = 3

DONE, RUNNING, FAILED, PENDING = "done", "running", "failed", "pending"


def slot(trial: FrozenTrial) -> str | None:
    """What a trial is an attempt at: a grid key, or the first attempt of a searched point."""
    return trial.user_attrs.get("slot")


def is_duplicate(trial: FrozenTrial) -> bool:
    return "duplicate_of" in trial.user_attrs


def attempts_by_slot(trials: list[FrozenTrial]) -> dict[str, list[FrozenTrial]]:
    """Non-duplicate trials by slot, oldest first."""
    by_slot = defaultdict(list)
    for trial in sorted(trials, key=lambda t: t.number):
        if not is_duplicate(trial) and slot(trial) is not None:
            by_slot[slot(trial)].append(trial)
    return by_slot


def resumable(attempts: list[FrozenTrial]) -> bool:
    """Whether the last attempt was interrupted (killed, Ctrl-C) and may continue."""
    last = attempts[-1]
    return (last.state == TrialState.FAIL and bool(last.user_attrs.get("interrupted"))
            and _worker_deaths(attempts) < MAX_WORKER_DEATHS)


def staleness(trial: FrozenTrial, now: float, stale_after_s: float, heard_since: float | None = None) -> str | None:
    """Why a RUNNING trial's worker is gone, or None while it lives. `heard_since`: when
    the caller got through to the storage again after an outage; no heartbeat could be
    written before, so silence counts from then."""
    attrs = trial.user_attrs
    host, pid = attrs.get("worker_host"), attrs.get("worker_pid")
    if pid is not None and attrs.get("worker_pid_scope") == PID_SCOPE and not pid_alive(pid):
        return f"worker died (pid {pid} on {host})"
    last_sign = attrs.get("heartbeat")
    if last_sign is None and trial.datetime_start is not None:
        last_sign = trial.datetime_start.timestamp()  # claimed, worker details not written yet
    if last_sign is not None and heard_since is not None:
        last_sign = max(last_sign, heard_since)
    if last_sign is not None and now - last_sign > stale_after_s:
        who = f"pid {pid} on {host}" if pid is not None else "its worker"
        return f"worker died (no heartbeat from {who} for {now - last_sign:.0f} s)"
    return None


@dataclass(frozen=True)
class SlotState:
    state: str  # DONE | RUNNING | FAILED | PENDING
    trial: FrozenTrial | None  # the attempt the state comes from
    detail: str = ""  # failure reason, why pending, or the running worker


def slot_state(attempts: list[FrozenTrial], now: float, stale_after_s: float) -> SlotState:
    """Where a slot stands, from its attempts (oldest first)."""
    by_state = defaultdict(list)
    for attempt in attempts:
        by_state[attempt.state].append(attempt)
    if by_state[TrialState.COMPLETE]:
        return SlotState(DONE, by_state[TrialState.COMPLETE][-1])
    if by_state[TrialState.PRUNED]:
        return SlotState(DONE, by_state[TrialState.PRUNED][-1], "pruned")
    for running in by_state[TrialState.RUNNING]:
        dead = staleness(running, now, stale_after_s)
        attrs = running.user_attrs
        where = f"pid {attrs['worker_pid']} on {attrs['worker_host']}" if "worker_pid" in attrs else "starting"
        if dead is None:
            return SlotState(RUNNING, running, where)
        return SlotState(RUNNING, running, f"{dead}; the next `ablate run` resumes it")
    if by_state[TrialState.WAITING]:
        waiting = by_state[TrialState.WAITING][0]
        return SlotState(PENDING, waiting, "queued, resumes from its checkpoint"
                         if waiting.user_attrs.get("resume_from") else "queued")
    if not attempts:
        return SlotState(PENDING, None)
    last = attempts[-1]
    reason = last.user_attrs.get("reason", "failed")
    if resumable(attempts):
        return SlotState(PENDING, last, f"interrupted ({reason}); resumes from its checkpoint")
    deaths = _worker_deaths(attempts)
    if last.user_attrs.get("interrupted") and deaths >= MAX_WORKER_DEATHS:
        reason = f"its worker died {deaths} times (last: {reason}); `--retry-failed` tries again"
    return SlotState(FAILED, last, reason)


def _worker_deaths(attempts: list[FrozenTrial]) -> int:
    return sum(1 for t in attempts if t.state == TrialState.FAIL and t.user_attrs.get("interrupted") == "died")
