"""URLs of the stores a study talks to (the Optuna storage, the MLflow tracking store):
where a study keeps them by default, which local file a URL names, their passwords masked
wherever they are shown, and database servers opened with a short connect timeout and
checked before anything trains. Imports nothing heavy (SQLAlchemy only when a server is
checked)."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

# a URL in free text: a scheme, '://', and everything up to the next blank
_URL_IN_TEXT = re.compile(r"[A-Za-z][\w+.-]*://\S+")
# SQLAlchemy's make_url reads scheme://USER:PASSWORD@HOST as: the user runs to the first
# ':' (no '/' in it), the password from there to the first '@' ('/', ':', '?' included).
# The mask runs to the last '@', so that a password with a raw '@' is hidden whole too.
_USERINFO = re.compile(r"(?P<head>[^:/@]*:)(?P<password>.*)@")
# query parameters that hold a secret (libpq's and psycopg's password=, tokens of HTTP servers)
SECRET_PARAMETERS = frozenset({"password", "passwd", "pwd", "secret", "token", "access_token", "api_key", "apikey"})
MASK = "***"
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
    """`text` with the password of every URL in it replaced by '***', wherever the URL
    holds it: its user info (postgresql://user:pw@host/db → postgresql://user:***@host/db,
    whatever characters the password has) or its query (?password=pw → ?password=***)."""
    return _URL_IN_TEXT.sub(lambda m: _masked(m.group()), text)


def _masked(url: str) -> str:
    scheme, _, rest = url.partition("://")
    userinfo = _USERINFO.match(rest)
    if userinfo and userinfo["password"]:
        rest = f"{userinfo['head']}{MASK}@{rest[userinfo.end():]}"
    head, sep, query = rest.partition("?")
    if sep:
        fragment_sep = "#" if "#" in query else ""
        query, _, fragment = query.partition("#")
        pairs = []
        for pair in query.split("&"):
            key, equals, value = pair.partition("=")
            secret = equals and value and urllib.parse.unquote_plus(key).lower() in SECRET_PARAMETERS
            pairs.append(f"{key}={MASK}" if secret else pair)
        rest = f"{head}?{'&'.join(pairs)}{fragment_sep}{fragment}"
    return f"{scheme}://{rest}"


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# SQLAlchemy's own dialects: the databases a storage or tracking URL can name
_SQL_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb", "mssql", "oracle")


def storage_problem(url: str) -> str | None:
    """Why `url` is not an Optuna storage ablate can open (one line), or None: a journal
    file (journal:///PATH or PATH.journal) or a SQLAlchemy database URL."""
    if journal_path(url) is not None:
        return None if str(journal_path(url)).strip("/") else "a journal URL names a file: journal:///PATH"
    return _database_problem(url, "an Optuna storage URL (sqlite:///PATH, postgresql://USER@HOST/DB, "
                                  "journal:///PATH)")


def tracking_problem(uri: str) -> str | None:
    """Why `uri` is not an MLflow tracking URI ablate can use (one line), or None: a
    tracking server (http[s]://HOST[:PORT]), a SQLAlchemy database URL, or databricks."""
    expected = "an MLflow tracking URI (sqlite:///PATH, postgresql://USER@HOST/DB, http://HOST:PORT)"
    if uri.startswith(("http://", "https://")):
        try:
            parsed = urllib.parse.urlsplit(uri)
            parsed.port  # noqa: B018 - raises ValueError for a port that is no number
        except ValueError as err:
            return f"{mask_url(uri)!r} is not {expected} ({err})"
        return None if parsed.hostname else f"{mask_url(uri)!r} names no host; expected {expected}"
    if uri == "databricks" or uri.startswith("databricks://"):
        return None
    if uri.startswith("file:"):
        return f"{uri!r}: MLflow's file store is deprecated and ablate does not use it; give sqlite:///PATH"
    return _database_problem(uri, expected)


def _database_problem(url: str, expected: str) -> str | None:
    shown = mask_url(url)
    if not _SCHEME.match(url):
        return f"{shown!r} is not {expected}"
    if dialect(url) not in _SQL_DIALECTS:
        return f"{shown!r}: unknown database {dialect(url)!r}; expected {expected}"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as err:
        return f"{shown!r} is not {expected} ({mask_url(str(err))})"
    return None if parsed.drivername else f"{shown!r} is not {expected}"


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
