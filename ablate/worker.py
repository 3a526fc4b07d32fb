"""The worker side of a study: who a worker is (host, pid), whether it is still alive,
the heartbeat it leaves on its running trial, how Ctrl-C stops it cleanly, and the entry
point of the worker processes that `ablate run --jobs N` starts.

Optuna's own heartbeat exists only for RDB storages, so workers keep their own in the
trial's user attributes; `ablate.study.attempts` reads them to find trials whose worker died.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path

HOST = socket.gethostname()


def _pid_scope() -> str:
    """Where a pid names one process: a kernel boot and a pid namespace. Host names do
    not tell: containers on one host may share it (host networking) but not their pids."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:  # no /proc (macOS): the host name is the best there is
        return HOST
    return f"{boot}/{namespace}"


PID_SCOPE = _pid_scope()


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


class StopRequest:
    """Ctrl-C, made safe. A KeyboardInterrupt raised wherever the signal happens to land
    can be swallowed (Python ignores exceptions raised in `__del__`) or cut a database
    write in half, so while in a `with` block on the main thread the first Ctrl-C only
    sets `requested` (the study stops at the next epoch end, right after a checkpoint, or
    before the next trial), and a second one raises KeyboardInterrupt at once."""

    def __init__(self, notice: Callable[[str], None]):
        self.notice = notice
        self.requested = False
        self._previous = None

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.notice("stopping at the end of the current epoch; press Ctrl-C again to stop at once")

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def worker_main(payload: dict, events, stop) -> None:
    """Entry point of one worker process (multiprocessing "spawn"): train trials of the
    study in `payload` until none is left or `stop` (an Event) is set, reporting each
    outcome on `events`. Ctrl-C reaches the whole process group; the parent decides."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(payload["threads"])
    from .study.workers import work_in_process

    try:
        work_in_process(payload, events.put, stop.is_set)
    except KeyboardInterrupt:
        return  # asked to stop: the interrupted trial is recorded, the parent reports it
    except Exception as err:
        events.put(("crashed", os.getpid(), f"{type(err).__name__}: {' '.join(str(err).split())}"))
        raise
