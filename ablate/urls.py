"""URLs of the stores a study talks to (the Optuna storage, the MLflow tracking store):
where a study keeps them by default, which local file a URL names, their passwords masked
wherever they are shown, and database servers opened with a short connect timeout and
checked before anything trains. Imports nothing heavy (SQLAlchemy only when a server is
checked)."""

from __future__ import annotations

import re
from pathlib import Path

# scheme://[user]:PASSWORD@host — the password runs to the last '@' before the path
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^:/@\s]*:)(?P<password>[^\s/]*)@")
# database servers, whose drivers all take `connect_timeout` (seconds)
_SERVER_DIALECTS = ("postgresql", "mysql", "mariadb")
CONNECT_TIMEOUT_S = 10


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite:/// URL (its query left off); None for any other URL
    and for an in-memory database."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].partition("?")[0]
    return None if path in ("", ":memory:") else Path(path)


def journal_path(url: str) -> Path | None:
    """The file of an Optuna journal URL: journal:///PATH, or a path ending in .journal."""
    if url.startswith("journal://"):
        return Path(url[len("journal://"):])
    if "://" not in url and url.endswith(".journal"):
        return Path(url)
    return None


def default_tracking_uri(study_dir: str | Path) -> str:
    """The MLflow store beside a study: a SQLite database, never MLflow's deprecated file store."""
    return sqlite_url(Path(study_dir) / "mlflow.db")


def mask_url(text: str) -> str:
    """`text` with the password of every URL in it replaced by '***'
    (postgresql://user:pw@host/db → postgresql://user:***@host/db)."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}***@", text)


def dialect(url: str) -> str:
    """The database of a SQLAlchemy URL without its driver: postgresql+psycopg://… → postgresql."""
    return url.partition("://")[0].partition("+")[0]


def is_database_server(url: str) -> bool:
    """A SQLAlchemy URL of a database server (postgresql://, mysql://), not a local file."""
    return dialect(url) in _SERVER_DIALECTS


def server_engine_options(url: str) -> dict:
    """SQLAlchemy engine options for a database server: give up connecting after
    CONNECT_TIMEOUT_S instead of the operating system's minutes, and test a pooled
    connection before use, since a restarted server leaves the pool's connections dead."""
    if not is_database_server(url):
        return {}
    return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}, "pool_pre_ping": True}


def database_unreachable(url: str) -> str | None:
    """Why the database server at `url` cannot be used (one line, password masked), or
    None when it accepts a connection. Connects once and creates nothing."""
    import sqlalchemy
    import sqlalchemy.exc

    try:
        engine = sqlalchemy.create_engine(url, **server_engine_options(url))
    except ImportError as err:  # the dialect's driver (PostgreSQL's, psycopg, is a dependency of ablate)
        return f"its database driver is missing ({err}); install it with pip"
    except (ValueError, sqlalchemy.exc.ArgumentError) as err:
        return f"not a database URL ({err})"
    try:
        with engine.connect():
            return None
    except sqlalchemy.exc.DBAPIError as err:
        return _first_line(str(err.orig) if err.orig is not None else str(err))
    except sqlalchemy.exc.SQLAlchemyError as err:
        return _first_line(str(err))
    finally:
        engine.dispose()


def _first_line(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), text.strip())
    return mask_url(first)
