"""Signals that end a command: which one did (Interrupted, exit code 128 + its number),
SIGTERM made to end a command as Ctrl-C does, and a Ctrl-C that lands in a finaliser
delivered again instead of lost. Imports nothing heavy: the CLI sets it up before it
knows which command runs. Stopping a training loop gently is ablate.engine.stopping."""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator


class Interrupted(KeyboardInterrupt):
    """A KeyboardInterrupt that knows the signal behind it."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While in the block, SIGTERM raises Interrupted(SIGTERM) as Ctrl-C raises
    KeyboardInterrupt: a command ends through its cleanup (runs ended, claims freed)
    instead of dying where it stands. ablate.engine.stopping refines both while training."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        with interrupts_survive_finalisers():
            yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupts_survive_finalisers() -> Iterator[None]:
    """Python only prints what a finaliser raises ("Exception ignored in ...": a `__del__`
    such as the saved-tensor hooks' `_Held.__del__`, a weakref callback) and goes on, so a
    Ctrl-C that lands in one would be lost. While in the block such a KeyboardInterrupt
    is delivered again a moment later, after the finaliser, and nothing is printed."""
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            _thread.start_new_thread(_deliver_later, (getattr(unraisable.exc_value, "signum", signal.SIGINT),))
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _deliver_later(signum: int) -> None:
    time.sleep(0.01)  # the finaliser that swallowed it has returned by then
    _thread.interrupt_main(signum)  # runs the signal's Python handler on the main thread
