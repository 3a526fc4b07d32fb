"""Stopping a training loop safely. A KeyboardInterrupt raised wherever Ctrl-C happens to
land can be swallowed (Python ignores exceptions raised in `__del__`, e.g. in a
saved-tensor finaliser) or cut a database write in half; so the first Ctrl-C only asks
the loop to stop at the end of its epoch, right after that epoch's checkpoint, and a
second one stops it at once: it raises KeyboardInterrupt, and, should that be swallowed,
the loop still stops at its next step."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

NOTICE = "stopping at the end of the current epoch; press Ctrl-C again to stop at once"


class StopRequest:
    """What a training loop checks: `requested` at every epoch end, `immediate` at every
    step. `also` adds another source of the request (e.g. a multiprocessing Event set by
    the parent of a worker process)."""

    def __init__(self, also: Callable[[], bool] = lambda: False):
        self._requested = False
        self._also = also
        self.immediate = False

    @property
    def requested(self) -> bool:
        return self._requested or self.immediate or self._also()

    def request(self) -> None:
        self._requested = True


@contextlib.contextmanager
def stop_on_interrupt(stop: StopRequest, notice: Callable[[str], None]) -> Iterator[StopRequest]:
    """While in the block, on the main thread, Ctrl-C feeds `stop`: the first requests a
    stop at the epoch end (and says so through `notice`), the second stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum, frame) -> None:
        if stop.requested:
            stop.immediate = True
            raise KeyboardInterrupt
        stop.request()
        notice(NOTICE)

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
