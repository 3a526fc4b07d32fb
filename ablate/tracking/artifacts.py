"""Files and figures added to finished runs: a trial's final weights read back, and the
results of an analysis (per-layer series, files, tags) written to the run it analysed."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from mlflow.exceptions import MlflowException

from . import names
from .store import store_for
from .uris import TrackingError


def load_checkpoint(tracking_uri: str, run_id: str) -> dict:
    """A finished trial's final weights and settings: {"model": state_dict, "config": flat}."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = store_for(tracking_uri).download(run_id, names.CHECKPOINT_ARTIFACT, tmp)
        except (MlflowException, OSError):
            raise TrackingError(f"run {run_id} has no {names.CHECKPOINT_ARTIFACT}: only a trial that finished "
                                "training keeps its weights; pick a finished run") from None
        return torch.load(path, map_location="cpu", weights_only=True)


def log_analysis(tracking_uri: str, run_id: str, *, series: dict[str, Iterable[float]], files: Iterable[Path],
                 artifact_path: str, tags: dict) -> None:
    """Add an analysis to a (finished) run: each series as one metric with step = the
    representation's index, the files under `artifact_path`, and `tags`."""
    store = store_for(tracking_uri)
    store.log_series(run_id, series)
    for path in files:
        store.log_artifact(run_id, path, artifact_path)
    store.log(run_id, tags=tags)


def set_run_tags(tracking_uri: str, run_id: str, tags: dict) -> None:
    store_for(tracking_uri).log(run_id, tags=tags)


def download_artifacts(tracking_uri: str, run_id: str, path: str, destination: str | Path) -> Path:
    """Copy a run's artifact file or folder `path` into `destination`; its local path."""
    return store_for(tracking_uri).download(run_id, path, destination)
