"""The progress display of `ablate run`: on a terminal, a status line (counts, ETA, the
running trials by cell and seed with their last validation accuracy) above one line per
finished trial; piped or redirected, one plain line per event (a trial's epoch, a trial
ending), never a carriage return."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from .progress import Running, Snapshot
from .text import duration


def running_text(run: Running) -> str:
    """'auglocal d=3 · s1 epoch 3/6 val 91.2%'."""
    val = "" if run.val_acc is None else f" val {100 * run.val_acc:.1f}%"
    return f"{run.label} epoch {run.epoch}/{run.epochs}{val}"


def eta_text(snap: Snapshot, jobs: int) -> str:
    """Time left from the epochs finished so far, shared by the workers; '?' before the first epoch."""
    if snap.eta_s is None:
        return "ETA ? (after the first epoch)"
    workers = max(1, min(jobs, snap.running + snap.pending))
    return f"ETA {duration(snap.eta_s / workers)}"


class Display:
    """A status line and one line per finished trial through `echo`. `bar`: show progress
    at all; the status line needs a terminal (`tty`, default: whether stdout is one),
    otherwise each epoch a running trial finishes is one plain line."""

    def __init__(self, name: str, total: int, jobs: int, bar: bool, echo: Callable[[str], None],
                 tty: bool | None = None):
        self.echo = echo
        self.jobs = jobs
        self.bar = None
        self.plain = False
        self.last = 0.0
        self.seen: dict[str, int] = {}  # trial key -> the last epoch printed as a plain line
        tty = sys.stdout.isatty() if tty is None else tty
        if bar and tty:
            from tqdm import tqdm  # the terminal's: tqdm.auto would pick the notebook widget

            self.bar = tqdm(total=total, desc=name, unit="trial", dynamic_ncols=True, leave=False,
                            bar_format="{desc}: {n_fmt}/{total_fmt} |{bar:16}|{postfix}")
        else:
            self.plain = bar

    def line(self, text: str) -> None:
        if self.bar is None:
            self.echo(text)
            return
        with self.bar.external_write_mode():
            self.echo(text)

    def refresh(self, snapshot: Callable[[], Snapshot], force: bool = False) -> None:
        """Redraw the status line (at most twice a second unless forced), or print the new
        epochs as plain lines; `snapshot` reads the storage, so it is called only then."""
        if self.bar is None and not self.plain:
            return
        if self.bar is not None and not force and time.monotonic() - self.last < 0.5:
            return  # plain lines are per epoch, which the caller paces
        self.last = time.monotonic()
        snap = snapshot()
        if self.bar is None:
            self._plain_lines(snap)
            return
        parts = [f"done {snap.done}", f"running {snap.running}", f"failed {snap.failed}", eta_text(snap, self.jobs)]
        parts += [running_text(run) for run in snap.current[:3]]
        self.bar.total = snap.total
        self.bar.n = snap.done + snap.failed
        self.bar.set_postfix_str(" · ".join(parts), refresh=True)

    def _plain_lines(self, snap: Snapshot) -> None:
        for run in snap.current:
            if run.epoch and self.seen.get(run.key) != run.epoch:
                self.seen[run.key] = run.epoch
                self.echo(f"  {running_text(run)} · {snap.done + snap.failed}/{snap.total} done · "
                          f"{eta_text(snap, self.jobs)}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
