"""What a finished training result leaves in Optuna: a summary in the trial's user
attributes and the objective values."""

from __future__ import annotations

from ..engine import Trainer
from ..metrics import BY_NAME, finite, summarize
from ..spec import StudySpec

# the summary kept with the trial (all of it is in MLflow too)
ATTRS = ("final_test_acc", "final_val_acc", "best_val_acc", "best_test_acc", "best_epoch",
         "peak_memory_bytes_max", "time_per_epoch_s", "epochs_completed")


def result_attrs(result: dict) -> dict:
    """The summary of a training result stored with its Optuna trial."""
    return {"status": result["status"], **summarize(result, which=[BY_NAME[name] for name in ATTRS])}


def objectives(spec: StudySpec, result: dict, trainer: Trainer) -> tuple[list[float], str | None]:
    """The Optuna values of a finished result, or the name of a missing one. Grid
    studies record best validation accuracy (final test accuracy when the study holds
    out no validation split; no grid study selects anything by it)."""
    if spec.search is None:
        values = summarize(result, which=[BY_NAME["best_val_acc"], BY_NAME["final_test_acc"]])
        value = values["best_val_acc"] if values["best_val_acc"] is not None else values["final_test_acc"]
        return ([value], None) if value is not None else ([], "best_val_acc")
    values = []
    for metric, _ in spec.search.objectives:
        value = BY_NAME[metric].value(result, trainer.cost)
        if not finite(value):
            return [], metric
        values.append(float(value))
    return values, None
