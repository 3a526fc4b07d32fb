"""The names a study's MLflow runs are found and read by: roles, tags, statuses, artifacts.

The study run is named after the study and tagged ablate.study, ablate.role=parent. A
cell run (ablate.role=cell, ablate.cell_id) is its child, one per cell. A trial run is the
child of its cell run (of the study run itself in stores made before cell runs), tagged ablate.study, ablate.role=trial,
ablate.cell_id, ablate.seed, ablate.trial_key, ablate.factors (JSON), ablate.optuna_trial,
ablate.device, ablate.host, ablate.pid, ablate.git_commit, ablate.version.<package>,
ablate.status and ablate.reason.
"""

from __future__ import annotations

PARENT_ROLE, CELL_ROLE, TRIAL_ROLE = "parent", "cell", "trial"

STUDY = "ablate.study"
ROLE = "ablate.role"
CELL_ID = "ablate.cell_id"
SEED = "ablate.seed"
TRIAL_KEY = "ablate.trial_key"
FACTORS = "ablate.factors"
CELL_NAME = "ablate.cell"  # a cell's short name by its factors ("auglocal d=3"): what the runs table groups by
STATUS = "ablate.status"
REASON = "ablate.reason"
REQUEST = "ablate.request"  # a token that lets a retried run creation find the run its first try made
PARENT = "mlflow.parentRunId"
STUDY_RUN = "ablate.study_run"  # a trial run's study run (its MLflow parent is its cell run)

# how a trial ended (ablate.status) -> the MLflow run status
MLFLOW_STATUS = {"finished": "FINISHED", "diverged": "FAILED", "failed": "FAILED", "killed": "KILLED"}

CHECKPOINT_ARTIFACT = "checkpoint/final.pt"

# a trial run's analysis: its state ("done", "waiting for reference <key>", "failed: <why>"),
# who is running it, the run it was compared with, and how each number was made
ANALYSIS = "ablate.analysis"
ANALYSIS_CLAIM = "ablate.analysis.claim"
ANALYSIS_REFERENCE = "ablate.analysis.reference_run"
ANALYSIS_DIR = "analysis"  # where its files go among the run's artifacts


def analysis_setting(kind: str, key: str) -> str:
    """The tag recording how one analysis number was made, e.g. ablate.analysis.cka.estimator."""
    return f"{ANALYSIS}.{kind}.{key}"
