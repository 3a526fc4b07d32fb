"""Stopping a training loop safely. A KeyboardInterrupt raised wherever Ctrl-C happens to
land can be swallowed (Python ignores exceptions raised in `__del__`, e.g. in a
saved-tensor finaliser) or cut a database write in half; so the first Ctrl-C, or a
SIGTERM (what `docker stop`, Kubernetes and Slurm send), only asks the loop to stop at
the end of its epoch, right after that epoch's checkpoint. A second one stops it at
once, and so does the end of a grace time (ABLATE_STOP_GRACE_S, default 8 s: `docker
stop` kills after 10) when the epoch has not ended by then: a KeyboardInterrupt is
raised; should a finaliser swallow it, it is delivered again
(ablate.interrupts.interrupts_survive_finalisers), and the loop still stops at its next
step."""

from __future__ import annotations

import _thread
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

from ..interrupts import Interrupted, interrupts_survive_finalisers
from ..outage import seconds_setting

GRACE_ENV = "ABLATE_STOP_GRACE_S"
DEFAULT_GRACE_S = 8.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def notice(signum: int, grace_s: float) -> str:
    """What the first signal says."""
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    return (f"{name}: stopping at the end of the current epoch, at once in {grace_s:g} s; "
            "press Ctrl-C again to stop now")


class StopRequest:
    """What a training loop checks: `requested` at every epoch end, `immediate` at every
    step. `also` adds another source of the request (e.g. a multiprocessing Event set by
    the parent of a worker process). `signum`: the signal that asked, if one did."""

    def __init__(self, also: Callable[[], bool] = lambda: False):
        self._requested = False
        self._also = also
        self.immediate = False
        self.signum: int | None = None
        self.stopped = False  # the loop has stopped: its end is being recorded, signals wait

    @property
    def requested(self) -> bool:
        return self._requested or self.immediate or self._also()

    def request(self, signum: int | None = None) -> None:
        self._requested = True
        self.signum = self.signum or signum

    def interruption(self) -> Interrupted:
        """The exception that ends what was stopped."""
        return Interrupted(self.signum or signal.SIGINT)


@contextlib.contextmanager
def stop_on_interrupt(stop: StopRequest, say: Callable[[str], None],
                      signals: tuple[int, ...] = SIGNALS) -> Iterator[StopRequest]:
    """While in the block, on the main thread, Ctrl-C and SIGTERM feed `stop`: the first
    requests a stop at the epoch end (and says so through `say`), the second, or the end
    of the grace time, stops at once. A KeyboardInterrupt leaving the block is an
    Interrupted naming the signal that asked."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    grace_s = seconds_setting(GRACE_ENV, DEFAULT_GRACE_S)
    timers: list[threading.Timer] = []

    def at_once(signum: int) -> None:
        if timers and not stop.immediate:
            _thread.interrupt_main(signum)  # runs `handle` on the main thread, wherever it is

    def handle(signum, frame) -> None:
        if stop.stopped:  # an interrupt now would cut the record that makes the trial resumable
            return
        if stop.requested:
            stop.immediate = True
            raise Interrupted(stop.signum or signum)
        stop.request(signum)
        say(notice(signum, grace_s))
        timer = threading.Timer(grace_s, at_once, (signum,))
        timer.daemon = True
        timers.append(timer)
        timer.start()

    previous = {signum: signal.signal(signum, handle) for signum in signals}
    try:
        with interrupts_survive_finalisers():
            yield stop
    except KeyboardInterrupt as err:
        if isinstance(err, Interrupted) or stop.signum is None:
            raise
        raise stop.interruption() from None
    finally:
        for timer in timers:
            timer.cancel()
        timers.clear()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
