"""`ablate run`: train every trial of a study that is not finished yet, in this process
or in worker processes, with a progress display and a summary of what happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna

from ..engine.stopping import stop_on_interrupt
from ..errors import UserInputError
from ..outage import StorageFault
from ..spec import StudySpec
from ..tracking import check_tracking_reachable, resolve_tracking_uri
from ..urls import mask_url, sqlite_path
from .analyses import analyse_ready
from .attempts import STALE_AFTER_S
from .display import Display
from .outcome import TrialOutcome
from .progress import Snapshot, snapshot
from .session import Session
from .storage import check_storage_reachable, resolve_storage
from .text import duration
from .workers import run_workers


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
    failed_before: list[tuple[str, str]] = field(default_factory=list)  # (trial, reason) failed by earlier runs
    notes: list[str] = field(default_factory=list)  # workers that died, runs ended, ...
    analysed: int = 0  # trials whose analysis ran at the end of this run
    wall_time_s: float = 0.0

    def render(self) -> str:
        if self.trained == 0 and not self.failed and not self.pruned:
            lines = [self._nothing_to_train()]
        else:
            lines = [self._trained()]
        lines += [f"  failed: {label}: {reason}" for label, reason in self.failed]
        lines += [f"  failed earlier: {label}: {reason}" for label, reason in self.failed_before]
        if self.failed_total:
            lines.append("  `ablate status` lists the failures; `ablate run --retry-failed` trains them again")
        return "\n".join(lines)

    def _trained(self) -> str:
        return (f"study {self.study}: trained {self.trained} trial{'s' if self.trained != 1 else ''}"
                 + (f", {self.pruned} pruned" if self.pruned else "")
                 + (f", {len(self.failed)} failed" if self.failed else "")
                 + f" in {duration(self.wall_time_s)}; {self.done}/{self.total} done"
                 + (f", {self.failed_total} failed" if self.failed_total else "")
                 + (f", {self.pending} pending" if self.pending else ""))

    def _nothing_to_train(self) -> str:
        if self.done == self.total:
            return f"study {self.study}: all {self.total} trials finished; nothing to train"
        parts = [f"{self.done} of {self.total} trials finished"]
        if self.failed_total:
            parts.append(f"{self.failed_total} failed")
        running = self.total - self.done - self.failed_total - self.pending
        if running:
            parts.append(f"{running} running in other processes")
        return f"study {self.study}: {', '.join(parts)}; nothing to train"


def run_study(spec: StudySpec, *, jobs: int = 1, retry_failed: bool = False, storage: str | None = None,
              tracking_uri: str | None = None, progress: bool = True, echo: Callable[[str], None] = print,
              stale_after_s: float = STALE_AFTER_S) -> RunSummary:
    """Train every trial of `spec` that is not finished yet, `jobs` at a time (jobs 1:
    in this process; more: in spawned worker processes), and return what happened.

    Both servers (storage, tracking) must answer first, or a StudyStorageError /
    TrackingError says so and nothing is created. Trials whose worker died are failed
    and resumed from their last epoch checkpoint; trials running in other processes
    are waited for, and taken over should their worker die; failed trials stay failed
    unless `retry_failed`. Prints one line per finished trial
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
    check_storage_reachable(url)  # both servers answer before anything is created
    check_tracking_reachable(tracking)
    session = Session(spec, url, tracking, stale_after_s=stale_after_s)
    notes = session.fail_stale() + session.end_orphan_runs() + session.reconcile()
    session.enqueue_missing(retry_failed)
    for note in notes:
        echo(note)
    before = snapshot(session)
    summary = RunSummary(spec.name, mask_url(url), before.total, before.done, notes=notes)
    # nothing pending but trials running elsewhere: one worker stays to take over any whose worker dies
    workers = min(jobs, before.pending) or min(1, before.running)
    if jobs > 1 and sqlite_path(url) is not None and workers > 1:
        echo(f"note: {workers} processes share the SQLite storage {url}; SQLite serialises their writes "
             "(a journal file or a database server does not)")
    if workers > 0:
        _train_pending(session, workers, before, summary, tracking, progress, echo)
    summary.analysed = analyse_ready(spec, tracking, echo, session.analysed)
    after = snapshot(session)
    summary.done, summary.pending, summary.failed_total = after.done, after.pending, after.failed
    failed_now = {label for label, _ in summary.failed}
    summary.failed_before = [(label, reason) for label, reason in after.failures if label not in failed_now]
    summary.wall_time_s = time.time() - started
    echo(summary.render())
    return summary


def _train_pending(session: Session, workers: int, before: Snapshot, summary: RunSummary, tracking_uri: str,
                   progress: bool, echo: Callable[[str], None]) -> None:
    """Train what is queued with `workers` processes (this one if 1), updating `summary`
    and the display as trials end."""
    session.tracker.set_parent_status(session.parent_id, "RUNNING")
    display = Display(session.spec.name, before.total, workers, progress, echo)

    def collect(outcome: TrialOutcome) -> None:
        summary.trained += outcome.status == "finished"
        summary.pruned += outcome.status == "pruned"
        summary.duplicates += outcome.status == "duplicate"
        if outcome.status == "failed":
            summary.failed.append((f"{outcome.label} ({outcome.key})", outcome.reason))
        if outcome.status == "duplicate":
            return
        now = snapshot(session)  # counts every process's trials, not only this one's
        display.line(outcome.line(now.done + now.failed, now.total))
        display.refresh(lambda: now, force=True)

    def note(text: str) -> None:
        summary.notes.append(text)
        display.line(text)

    session.notify = note
    session.on_epoch = lambda: display.refresh(lambda: snapshot(session))
    session.on_wait = lambda running: display.line(
        f"waiting for {running} trial{'s' if running != 1 else ''} running in other processes, to take over "
        "any whose worker dies")
    display.refresh(lambda: before, force=True)
    try:
        with stop_on_interrupt(session.stop, display.line):
            if workers == 1:
                session.work(collect)
            else:
                run_workers(session, workers, tracking_uri, display, collect, note)
    except KeyboardInterrupt:
        _end_parent_run(session, "KILLED")
        raise
    except StorageFault:
        try:
            _end_parent_run(session, "FAILED")
        except Exception:  # the store is on the full disk too: the next `ablate run` ends the run
            pass
        raise
    finally:
        display.close()
    _end_parent_run(session, "FINISHED")


def _end_parent_run(session: Session, status: str) -> None:
    """End the parent run unless trials of the study still run elsewhere."""
    if snapshot(session).running == 0:
        session.tracker.set_parent_status(session.parent_id, status)
