"""Who a worker is (host, pid scope) and whether a process of it is still alive.

Optuna's own heartbeat exists only for RDB storages, so workers keep their own in the
trial's user attributes (ablate.study.heartbeat); `ablate.study.attempts` reads them to
find trials whose worker died.
"""

from __future__ import annotations

import os
import socket
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
