"""A study's analyses as tables, for notebooks: read from MLflow by the study's name.

    spec, uri = open_study("studies/rules.yaml")
    probes = layer_frame(spec, uri, "probe_acc")      # cell, seed, layer, value
    matrices = cka_matrices(spec, uri)                # {(cell label, seed): DataFrame}
    colours = cell_colours(spec)                      # {cell label: the colour the report gives it}

A relative study path is found where the person typed it: the directory Jupyter was
started from ($PWD, as the shell that started it left it), then the kernel's own
directory (the notebook's) and its parents, so `ABLATE_STUDY=studies/x.yaml jupyter lab`
from the repository works as `ablate` does.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .. import tracking
from ..errors import UserInputError
from ..spec import load_study
from .palette import palette
from .summary import cell_label


def find_study(path: str | Path) -> Path:
    """The study file `path` names (see the module's docstring for where a relative one is looked for)."""
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    here = Path.cwd()
    places = ([Path(os.environ["PWD"])] if os.environ.get("PWD") else []) + [here, *here.parents]
    for place in places:
        if (place / path).is_file():
            return place / path
    raise UserInputError(f"study file {path} not found in {places[0]} nor in {here} or a folder above it; "
                         "give ABLATE_STUDY an absolute path")


def open_study(path: str | Path, tracking_uri: str | None = None):
    """(StudySpec, tracking URI): the study file's, or `tracking_uri` over it."""
    spec = load_study(find_study(path))
    return spec, tracking.resolve_tracking_uri(spec, tracking_uri)


def cell_colours(spec) -> dict[str, str | tuple]:
    """{cell label: colour}: the colour each cell has in the report's figures."""
    colours = palette(spec.cells())
    return {cell_label(factors, cell_id): colours[cell_id] for cell_id, factors in spec.cells()}


def trial_runs(spec, tracking_uri: str) -> list[tracking.RunRecord]:
    """The latest finished run of each trial, in the study's cell order."""
    latest = tracking.latest_finished(tracking_uri, spec.experiment, spec.name)
    order = {cell: i for i, (cell, _) in enumerate(spec.cells())}
    return sorted(latest.values(), key=lambda run: (order.get(run.cell_id, len(order)), run.seed))


def layer_frame(spec, tracking_uri: str, metric: str) -> pd.DataFrame:
    """One row per (cell, seed, layer) of a per-layer metric (probe_acc, cka_to_ref)."""
    rows = []
    for run in trial_runs(spec, tracking_uri):
        if metric not in run.metrics:
            continue
        label = cell_label(run.factors, run.cell_id)
        rows += [{"cell": label, "cell_id": run.cell_id, "seed": run.seed, "layer": step, "value": value}
                 for step, value in tracking.metric_history(tracking_uri, run.run_id, metric)]
    return pd.DataFrame(rows, columns=["cell", "cell_id", "seed", "layer", "value"])


def cka_matrices(spec, tracking_uri: str) -> dict[tuple[str, int], pd.DataFrame]:
    """Each analysed trial's full layer × layer CKA to its reference, labelled."""
    matrices = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in trial_runs(spec, tracking_uri):
            if run.tags.get(tracking.names.ANALYSIS_REFERENCE) is None:
                continue
            folder = Path(tmp) / run.run_id
            table = tracking.download_artifacts(tracking_uri, run.run_id, "analysis/cka_to_ref.csv", folder)
            frame = pd.read_csv(table, index_col=0)
            matrix = np.load(tracking.download_artifacts(tracking_uri, run.run_id, "analysis/cka_to_ref.npy",
                                                         folder))
            matrices[(cell_label(run.factors, run.cell_id), run.seed)] = pd.DataFrame(
                matrix, index=frame.index, columns=frame.columns)
    return matrices
