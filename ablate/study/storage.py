"""Where a study's Optuna trials live, and opening that storage.

One process: SQLite beside the study. Several processes on this host: an Optuna journal
file (SQLite serialises writers through one file lock, and under several writers a
transaction can wait long or fail with "database is locked"). Several hosts: a database
URL such as postgresql://. A study keeps the storage it started with.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy.exc
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from ..errors import UserInputError
from ..spec import StudySpec
from ..tracking import mask_url
from .text import one_line


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
    return f"sqlite:///{database.resolve()}"


def journal_path(url: str) -> Path | None:
    if url.startswith("journal://"):
        return Path(url[len("journal://"):])
    if "://" not in url and url.endswith(".journal"):
        return Path(url)
    return None


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].partition("?")[0]
    return None if path in ("", ":memory:") else Path(path)


def _absolute_url(url: str, base: Path) -> str:
    journal = journal_path(url)
    if journal is not None:
        return f"journal://{(base / journal).resolve()}"
    database = sqlite_path(url)
    if database is not None and not database.is_absolute():
        query = url.partition("?")[2]
        return f"sqlite:///{(base / database).resolve()}" + (f"?{query}" if query else "")
    return url


def storage_exists(url: str) -> bool:
    """False only for a file storage whose file is not there yet (nothing to read)."""
    path = journal_path(url) or sqlite_path(url)
    return path is None or path.exists()


def open_storage(url: str) -> BaseStorage:
    journal = journal_path(url)
    try:
        if journal is not None:
            journal.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(journal)))
        engine_kwargs = {}
        database = sqlite_path(url)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
            # wait for another writer's lock instead of failing after SQLite's 5 s
            engine_kwargs = {"connect_args": {"timeout": 60}}
        return RDBStorage(url, engine_kwargs=engine_kwargs)
    except (ImportError, OSError, ValueError, RuntimeError, sqlalchemy.exc.SQLAlchemyError) as err:
        raise StudyStorageError(f"cannot open the Optuna storage {mask_url(url)}: {one_line(err)}; "
                                "check --storage or 'storage:' in the study file") from None
