"""ablate's SQLite databases (the MLflow store, an Optuna storage) commit through a
write-ahead log: one disk sync per commit instead of two or three (ablate/sqlite.py)."""

import sqlite3

from ablate.sqlite import use_write_ahead_log
from ablate.study.storage import open_storage
from ablate.tracking.store import store_for


def journal_mode(path) -> str:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA journal_mode").fetchone()[0]


def test_the_mlflow_store_and_the_optuna_storage_are_created_in_wal_mode(tmp_path):
    mlflow_db, optuna_db = tmp_path / "runs" / "mlflow.db", tmp_path / "runs" / "optuna.db"
    store_for(f"sqlite:///{mlflow_db}").client  # the first client creates the database
    open_storage(f"sqlite:///{optuna_db}")
    assert journal_mode(mlflow_db) == "wal"
    assert journal_mode(optuna_db) == "wal"


def test_a_database_made_in_the_old_mode_is_switched_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (7)")
    assert journal_mode(path) == "delete"
    assert use_write_ahead_log(path)
    assert journal_mode(path) == "wal"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT x FROM t").fetchall() == [(7,)]


def test_a_folder_that_cannot_hold_the_database_is_left_to_the_caller(tmp_path):
    """No exception and no file: the caller's own open then fails with its one-line error."""
    missing = tmp_path / "no" / "such" / "folder" / "x.db"
    assert use_write_ahead_log(missing) is False
    assert not missing.parent.exists()
    assert use_write_ahead_log(tmp_path) is False  # a folder, not a database
