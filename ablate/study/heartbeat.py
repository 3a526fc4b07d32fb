"""The heartbeat a worker leaves on the trial it trains, from a thread of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Heartbeat:
    """Calls `beat()` every `interval_s` seconds on a daemon thread while in a `with`
    block. The first failing beat stops the thread and sets `failed` (the trial was
    finished by someone else, or the storage went away); the training thread checks it."""

    def __init__(self, beat: Callable[[], None], interval_s: float):
        self._beat = beat
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ablate-heartbeat", daemon=True)
        self.failed: BaseException | None = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._beat()
            except Exception as err:  # reported through `failed`, never lost
                self.failed = err
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
