"""Which MLflow tracking store a study uses, where its artifacts go, and whether it answers."""

from __future__ import annotations

import os
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..errors import UserInputError, one_line
from ..outage import error_chain
from ..urls import database_unreachable, default_tracking_uri, is_database_server, mask_url, sqlite_path

__all__ = ["TrackingError", "check_tracking_reachable", "default_artifact_location", "default_tracking_uri",
           "resolve_tracking_uri"]


class TrackingError(UserInputError):
    """The tracking store cannot be used as configured."""


def resolve_tracking_uri(spec, override: str | None = None) -> str:
    """The command line's URI, else the study file's, else the default beside the study."""
    return override or spec.tracking_uri or default_tracking_uri(spec.directory)


def default_artifact_location(tracking_uri: str) -> str | None:
    """Artifacts of a SQLite store go beside the database; MLflow would otherwise put
    them under ./mlruns of whatever directory the command runs in. Other stores (a
    tracking server) decide themselves."""
    db = sqlite_path(tracking_uri)
    return None if db is None else (db.parent / "mlartifacts").resolve().as_uri()


def check_tracking_reachable(tracking_uri: str, timeout_s: int = 5) -> None:
    """A TrackingError (one line) unless the tracking store answers: a server gets one
    cheap request with a short timeout and no retries, a database server one connection.
    Creates nothing; a SQLite file is created on first use, so it always answers."""
    if is_database_server(tracking_uri):
        reason = database_unreachable(tracking_uri)
    elif tracking_uri.startswith(("http://", "https://")):
        reason = _server_unreachable(tracking_uri, timeout_s)
    else:
        return
    if reason is not None:
        raise TrackingError(f"cannot reach the MLflow tracking store {mask_url(tracking_uri)}: {reason}; start it "
                            "or fix --tracking-uri, ABLATE_TRACKING_URI or 'tracking: uri:' in the study file")


def _server_unreachable(tracking_uri: str, timeout_s: int) -> str | None:
    import requests

    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)}
    saved = {name: os.environ.get(name) for name in quick}
    os.environ.update(quick)
    try:
        MlflowClient(tracking_uri).search_experiments(max_results=1)
    except MlflowException as err:
        causes = list(error_chain(err))
        if any(isinstance(cause, (requests.exceptions.Timeout, TimeoutError)) for cause in causes):
            return f"no answer within {timeout_s} s"
        refused = [c for c in causes if isinstance(c, OSError) and not isinstance(c, requests.RequestException)]
        text = str(refused[-1]) if refused else err.message
        return one_line(text, 300)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return None


def store_exists(tracking_uri: str) -> bool:
    """False for a SQLite store whose file is not there yet (reading must not create it)."""
    db = sqlite_path(tracking_uri)
    return db is None or Path(db).exists()
