"""The worker side of a study: who a worker is (host, pid), whether it is still alive,
the heartbeat it leaves on its running trial, and the entry point of the worker
processes that `ablate run --jobs N` starts.

Optuna's own heartbeat exists only for RDB storages, so workers keep their own in the
trial's user attributes; `ablate.study` reads them to find trials whose worker died.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

HOST = socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether process `pid` on this host still runs (a zombie, killed but not yet
    reaped by its parent, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        # the state letter follows the command name, which is in parentheses and may hold spaces
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def torch_threads(jobs: int) -> int:
    """Threads per worker so that `jobs` workers share this machine's cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores // max(jobs, 1))


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


def worker_main(payload: dict, events) -> None:
    """Entry point of one worker process (multiprocessing "spawn"): train trials of the
    study in `payload` until none is left, reporting each outcome on `events`."""
    import torch

    torch.set_num_threads(payload["threads"])
    start = time.time()
    from . import study

    try:
        study.work_in_process(payload, events.put)
    except KeyboardInterrupt:
        events.put(("stopped", os.getpid(), "interrupted"))
    except Exception as err:
        events.put(("crashed", os.getpid(), f"{type(err).__name__}: {' '.join(str(err).split())}"))
        raise
    else:
        events.put(("stopped", os.getpid(), f"done after {time.time() - start:.0f} s"))
