"""What a finished training result leaves in Optuna: a summary in the trial's user
attributes and the objective values."""

from __future__ import annotations

import math

from ..spec import StudySpec
from ..train import Trainer

_RESULT_METRICS = {
    "best_val_acc": lambda r: (r["best"] or {}).get("val_acc"),
    "final_val_acc": lambda r: (r["final"] or {}).get("val_acc"),
    "final_train_loss": lambda r: (r["final"] or {}).get("train_loss"),
    "peak_memory_bytes_max": lambda r: r["peak_memory_bytes"],
    "time_per_epoch_s": lambda r: r["time_per_epoch_s"],
}


def result_attrs(result: dict) -> dict:
    """The summary of a training result stored with its Optuna trial."""
    final, best = result["final"] or {}, result["best"] or {}
    return {
        "status": result["status"], "epochs_completed": result["epochs_completed"],
        "final_test_acc": final.get("test_acc"), "final_val_acc": final.get("val_acc"),
        "best_val_acc": best.get("val_acc"), "best_test_acc": best.get("test_acc"), "best_epoch": best.get("epoch"),
        "peak_memory_bytes": result["peak_memory_bytes"], "time_per_epoch_s": result["time_per_epoch_s"],
    }


def objectives(spec: StudySpec, result: dict, trainer: Trainer) -> tuple[list[float], str | None]:
    """The Optuna values of a finished result, or the name of a missing one. Grid
    studies record best validation accuracy (final test accuracy when the study holds
    out no validation split; no grid study selects anything by it)."""
    if spec.search is None:
        value = _RESULT_METRICS["best_val_acc"](result)
        if value is None:
            value = (result["final"] or {}).get("test_acc")
        return ([value], None) if value is not None else ([], "best_val_acc")
    values = []
    for metric, _ in spec.search.objectives:
        value = _RESULT_METRICS[metric](result) if metric in _RESULT_METRICS else _network_metric(trainer, metric)
        if value is None or not math.isfinite(value):
            return [], metric
        values.append(float(value))
    return values, None


def _network_metric(trainer: Trainer, metric: str) -> float:
    from ..describe import describe_network, training_flops

    description = describe_network(trainer.net)
    return training_flops(description) if metric == "train_flops_per_example" else description[metric]
