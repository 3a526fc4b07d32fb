"""Riding out a short outage of a server a worker depends on (the Optuna database, the
MLflow tracking server): a call that fails for a reason time can cure is tried again
with exponential backoff, for at most ABLATE_OUTAGE_S seconds (default 120) per call,
so that a restarted database costs a pause, not a trial. Any other error, or one that
outlasts the patience, is raised as it came. A full disk or a read-only folder is no
outage (`storage_fault`): waiting cures neither, so it is raised at once as a
StorageFault, one line that names the file.

Only calls that may safely run twice go through `Patience.call`, each at its call site
(the stores' own modules say why each one may): a call whose first try reached the
server before the connection dropped must not leave a second copy of its effect."""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable

from .errors import UserInputError, one_line
from .urls import mask_url

OUTAGE_ENV = "ABLATE_OUTAGE_S"
DEFAULT_OUTAGE_S = 120.0
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 15.0

log = logging.getLogger("ablate")


class SecondsSettingError(UserInputError):
    """An environment variable that holds seconds (ABLATE_OUTAGE_S, ABLATE_STOP_GRACE_S) is not a number of them."""


def seconds_setting(name: str, default: float) -> float:
    """The seconds in environment variable `name`, `default` when it is unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise SecondsSettingError(f"{name}={raw!r} is not a number of seconds; set it to e.g. {name}={default:g}, "
                                  "or unset it")
    return value


def outage_patience_s() -> float:
    """How long a call may keep failing transiently before it is given up (ABLATE_OUTAGE_S)."""
    return seconds_setting(OUTAGE_ENV, DEFAULT_OUTAGE_S)


class StorageFault(UserInputError):
    """A file or database could not be written: the disk is full, or the folder read-only."""


# what a disk says when it is full or cannot be written; an OSError with one of these errnos is no outage
_FAULT_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                 errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                 errno.EPERM: "operation not permitted"}
# the same faults as SQLite words them (its errors carry no errno)
_SQLITE_FAULTS = {"database or disk is full": "no space left on device",
                  "attempt to write a readonly database": "read-only database",
                  "unable to open database file": "cannot open the database file"}


def storage_fault(err: BaseException) -> str | None:
    """What went wrong, in words, when `err` comes from a full disk or an unwritable file
    or folder (the file named where the error names it); None otherwise."""
    for cause in error_chain(err):
        if isinstance(cause, OSError) and cause.errno in _FAULT_ERRNOS:
            where = f" writing {cause.filename}" if cause.filename else ""
            return f"{_FAULT_ERRNOS[cause.errno]}{where}"
        text = str(cause).lower()
        for words, fault in _SQLITE_FAULTS.items():
            if words in text:
                return fault
    return None


def is_outage(err: BaseException) -> bool:
    """Whether a call failed because its server could not be reached: no connection, a
    dropped one, no answer in time, too many 5xx answers from a tracking server (its
    database is down), a locked SQLite file; never a full disk or a read-only file."""
    import requests
    import sqlalchemy.exc

    if storage_fault(err) is not None:
        return False

    outages = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError,
               sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.DisconnectionError,
               sqlalchemy.exc.TimeoutError, ConnectionError, TimeoutError)
    return any(isinstance(cause, outages) for cause in error_chain(err))


def error_chain(err: BaseException):
    """`err` and the errors it was raised from or while handling, innermost last."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


class Patience:
    """Calls a function, and calls it again while it fails transiently
    (`is_transient(error)`), waiting 0.5 s, 1 s, 2 s, … (at most MAX_DELAY_S) in between,
    until `limit_s` seconds have passed. `server` names what is waited for in the
    warning logged once per outage. `recovered_at` is the (wall-clock) time a call
    last succeeded after failing: until then nobody could have reached the server."""

    def __init__(self, server: str, is_transient: Callable[[BaseException], bool] = is_outage,
                 limit_s: float | None = None,
                 *, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.server = mask_url(server)
        self.is_transient = is_transient
        self.limit_s = outage_patience_s() if limit_s is None else limit_s
        self.sleep = sleep
        self.clock = clock
        self.recovered_at: float | None = None

    def call(self, function: Callable, *args, **kwargs):
        started, delay, failures = self.clock(), FIRST_DELAY_S, 0
        while True:
            try:
                result = function(*args, **kwargs)
            except Exception as err:
                if not self.is_transient(err) or self.clock() - started + delay > self.limit_s:
                    raise
                if failures == 0:
                    log.warning("%s did not answer (%s); retrying for up to %.0f s", self.server,
                                one_line(err, 300), self.limit_s)
                failures += 1
                self.sleep(delay)
                delay = min(2 * delay, MAX_DELAY_S)
                continue
            if failures:
                self.recovered_at = time.time()
                log.warning("%s answers again after %d failed attempt%s", self.server, failures,
                            "" if failures == 1 else "s")
            return result
