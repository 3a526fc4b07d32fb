"""The progress display of `ablate run`: a status line and one line per finished trial."""

from __future__ import annotations

import time
from collections.abc import Callable

from .progress import Snapshot
from .text import duration


class Display:
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

    def refresh(self, snapshot: Callable[[], Snapshot], force: bool = False) -> None:
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
        parts = [f"done {snap.done}", f"running {snap.running}", f"failed {snap.failed}", f"ETA {duration(eta)}"]
        parts += [f"{key} epoch {epoch}/{epochs}" for key, epoch, epochs in snap.current[:3]]
        self.bar.total = snap.total
        self.bar.n = snap.done + snap.failed
        self.bar.set_postfix_str(" · ".join(parts), refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
