"""The SQLite databases ablate opens (the MLflow store, an Optuna storage) keep their
rollback journal in write-ahead-log mode.

Every Optuna attribute and every MLflow write is its own transaction: 864 commits for the
quickstart's 6 trials, MLflow's schema creation included. In SQLite's default mode (a
rollback journal, deleted after each commit) a commit syncs the disk two or three times;
in WAL mode it appends to one log and syncs it once. Measured on this project's 2-core
machine at load 2 to 3: 19 ms a commit against 3.9 ms, and a fresh MLflow store's schema
(its migrations, one commit each) 6.6 s against 1.8 s.
Durability is unchanged (synchronous stays FULL: a committed trial survives a power cut),
and readers (`ablate status`, `mlflow ui`) no longer block the writers.

WAL mode is a property of the database file: set once, every later connection (MLflow's,
Optuna's, optuna-dashboard's) uses it. It needs all processes on one host, which is
ablate's own rule for SQLite (several hosts share a study through PostgreSQL).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path


def use_write_ahead_log(path: Path, timeout_s: float = 60.0) -> bool:
    """Put the SQLite database at `path` in WAL mode (creating the file if missing; a
    database already in WAL mode is left as it is). False when it could not be switched
    (a read-only or full disk, another process mid-transaction past `timeout_s`): the
    database then works as before, in its old mode, and the error is the caller's to meet."""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=timeout_s)) as db:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.Error:
        return False
    return str(mode).lower() == "wal"
