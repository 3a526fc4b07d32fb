"""Where a study's Optuna trials live, and opening that storage.

One process: SQLite beside the study. Several processes on this host: an Optuna journal
file (SQLite serialises writers through one file lock, and under several writers a
transaction can wait long or fail with "database is locked"). Several hosts: a database
URL such as postgresql://. A study keeps the storage it started with.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import sqlalchemy
import sqlalchemy.exc
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from ..errors import UserInputError, one_line
from ..spec import StudySpec
from ..sqlite import use_write_ahead_log
from ..urls import (database_unreachable, dialect, is_database_server, journal_path, mask_url, server_engine_options,
                    sqlite_path, sqlite_url)

_SCHEMA_LOCK_KEY = int.from_bytes(b"ablate.o", "big") >> 1  # any fixed 63-bit number, the same in every worker


class StudyStorageError(UserInputError):
    """The Optuna storage cannot be opened, or holds a different study under this name."""


def resolve_storage(spec: StudySpec, storage_override: str | None = None, jobs: int = 1) -> str:
    """The Optuna storage URL of a study: `storage_override` (the CLI's --storage), else
    the study file's `storage:`, else a file in the study's folder: SQLite
    (`optuna.db`) for one process, an Optuna journal (`optuna.journal`) for several.
    Whichever default file exists already wins, so a study keeps its storage when it is
    resumed with another --jobs. "journal:///PATH" or a path ending in .journal is a
    journal file; anything else is a SQLAlchemy URL (sqlite:///, postgresql://, ...).
    Relative paths count from the working directory (override) or the study file's folder.
    SQLite serialises writers through one lock: with several processes on it, expect
    waits and, under load, "database is locked" failures; prefer a journal or a server.
    """
    if storage_override:
        return _absolute_url(storage_override, Path.cwd())
    if spec.storage:
        return _absolute_url(spec.storage, spec.path.parent)
    database, journal = spec.directory / "optuna.db", spec.directory / "optuna.journal"
    if journal.exists() or (jobs > 1 and not database.exists()):
        return f"journal://{journal.resolve()}"
    return sqlite_url(database)


def _absolute_url(url: str, base: Path) -> str:
    journal = journal_path(url)
    if journal is not None:
        return f"journal://{(base / journal).resolve()}"
    database = sqlite_path(url)
    if database is not None and not database.is_absolute():
        query = url.partition("?")[2]
        return sqlite_url(base / database) + (f"?{query}" if query else "")
    return url


def check_storage_reachable(url: str) -> None:
    """A StudyStorageError (one line) when `url` names a database server that does not
    accept a connection; creates nothing. File storages are always reachable."""
    if not is_database_server(url):
        return
    reason = database_unreachable(url)
    if reason is not None:
        raise StudyStorageError(f"cannot reach the Optuna storage {mask_url(url)}: {reason}; start the database "
                                "server or fix --storage, ABLATE_STORAGE or 'storage:' in the study file")


def storage_exists(url: str) -> bool:
    """Whether the storage holds anything to read: False for a file storage whose file
    is not there yet, or a database server without Optuna's tables (left uncreated)."""
    path = journal_path(url) or sqlite_path(url)
    if path is not None:
        return path.exists()
    if not is_database_server(url):
        return True
    check_storage_reachable(url)
    engine = sqlalchemy.create_engine(url, **server_engine_options(url))
    try:
        return sqlalchemy.inspect(engine).has_table("studies")
    except sqlalchemy.exc.SQLAlchemyError as err:
        raise StudyStorageError(f"cannot read the Optuna storage {mask_url(url)}: {one_line(err)}") from None
    finally:
        engine.dispose()


def open_storage(url: str) -> BaseStorage:
    """The Optuna storage at `url` (ablate.study.store.TrialStore is how the study uses it)."""
    journal = journal_path(url)
    try:
        if journal is not None:
            journal.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(journal)))
        engine_kwargs = server_engine_options(url)
        database = sqlite_path(url)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
            use_write_ahead_log(database)
            # wait for another writer's lock instead of failing after SQLite's 5 s
            engine_kwargs = {"connect_args": {"timeout": 60}}
        with _schema_lock(url):
            storage = RDBStorage(url, engine_kwargs=engine_kwargs)
    except (ImportError, OSError, ValueError, RuntimeError, sqlalchemy.exc.SQLAlchemyError) as err:
        raise StudyStorageError(f"cannot open the Optuna storage {mask_url(url)}: {one_line(err)}; "
                                "check --storage, ABLATE_STORAGE or 'storage:' in the study file") from None
    return storage


@contextlib.contextmanager
def _schema_lock(url: str):
    """Hold PostgreSQL's advisory lock on Optuna's tables: workers that all start on a
    fresh database at once would otherwise each create the tables and stamp their
    version, and all but one fail (or leave two version stamps)."""
    if dialect(url) != "postgresql":
        yield
        return
    engine = sqlalchemy.create_engine(url, **server_engine_options(url))
    try:
        with engine.connect() as connection:  # the lock goes with the connection
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            yield
    finally:
        engine.dispose()
