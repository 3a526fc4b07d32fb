"""Training one claimed trial: its worker details and heartbeat in the storage, its
MLflow run, resuming from its checkpoint folder, and how it ends in Optuna.

The first Ctrl-C lets the trial finish its epoch (whose checkpoint is then on disk),
records it FAIL with "interrupted" and its MLflow run KILLED; the next `ablate run`
resumes it. A full disk or a read-only folder (ablate.outage.storage_fault) is recorded
the same way, with its MLflow run FAILED, and stops the study with a StorageFault: every
other trial would meet the same disk. The checkpoint folder is deleted when a trial
ends otherwise (the final weights are an MLflow artifact).
"""

from __future__ import annotations

import gc
import math
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..engine import Callback, Trainer
from ..engine.checkpoints import CheckpointMismatch
from ..errors import one_line
from ..outage import StorageFault, storage_fault
from ..spec import Trial
from ..tracking import run_name
from .attempts import slot
from .heartbeat import Heartbeat
from .liveness import HOST, PID_SCOPE
from .optimizer import grid_distributions, metric_names, param_value, set_grid_params
from .outcome import TrialOutcome
from .results import objectives, result_attrs


class TrialTakenOver(Exception):
    """Someone declared this worker dead and finished its trial; stop training it."""


@dataclass
class _Verdict:
    """How a claimed trial ends in the storage, decided while training and written after."""

    state: TrialState
    outcome: str  # TrialOutcome.status
    reason: str = ""
    values: list[float] | None = None
    attrs: dict = field(default_factory=dict)
    keep_checkpoint: bool = False
    resumed_from_epoch: int = 0
    run_status: tuple[str, str] = ("killed", "interrupted by the user")  # how its MLflow run ends


def train_claimed(session, claimed: FrozenTrial, trial: Trial,
                  asked: optuna.Trial | None = None) -> TrialOutcome:
    """Train a claimed trial for `session` (the ablate.study.session.Session that claimed
    it) and record how it ended; Ctrl-C is recorded, then re-raised."""
    started = time.time()
    label = run_name(trial.factors, trial.seed, trial.cell_id)
    resume_from = claimed.user_attrs.get("resume_from")
    checkpoint_dir = Path(resume_from) if resume_from else session.checkpoint_dir(slot(claimed))
    if not resume_from:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # a failed attempt's leftovers
    try:
        if session.spec.search is None:  # a search's sampler set them already
            set_grid_params(session.store, claimed._trial_id, trial.factors, grid_distributions(session.spec))
        session.set_attrs(claimed, {"label": label, "cell": label.rsplit(" · ", 1)[0],
                                    **{f"factor.{k}": param_value(v) for k, v in trial.factors.items()}})
        session.set_attrs(claimed, {"worker_host": HOST, "worker_pid": os.getpid(), "worker_pid_scope": PID_SCOPE,
                                    "heartbeat": time.time(), "checkpoint_dir": str(checkpoint_dir),
                                    "epochs": trial.config.epochs, "epoch": 0})
    except TrialTakenOver as lost:
        return TrialOutcome(trial.key, label, claimed.number, "lost", str(lost))

    def beat() -> None:
        session.store.set_attr(claimed._trial_id, "heartbeat", time.time())

    with Heartbeat(beat, session.heartbeat_s) as heartbeat:
        verdict = _fit(session, claimed, trial, checkpoint_dir, heartbeat, asked)
    if verdict.outcome != "lost":
        attrs = {**verdict.attrs, **({"reason": verdict.reason} if verdict.reason else {})}
        try:
            ended = session.end(claimed, verdict.state, attrs, verdict.values)
        except Exception as err:
            fault = verdict.reason if verdict.outcome == "fault" else storage_fault(err)
            if fault is None:
                raise
            # the storage itself cannot be written: the trial stays RUNNING there until the
            # next `ablate run` finds its worker dead and resumes it
            raise StorageFault(_fault_text(fault, label)) from None
        if not ended:
            verdict.outcome, verdict.reason = "lost", "another process ended this trial first"
        elif not verdict.keep_checkpoint:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the final one is an MLflow artifact
    if verdict.outcome == "fault":
        raise StorageFault(_fault_text(verdict.reason, label))
    outcome = TrialOutcome(trial.key, label, claimed.number, verdict.outcome, verdict.reason,
                           (verdict.values or [None])[0], time.time() - started, verdict.resumed_from_epoch,
                           metric_names(session.spec)[0])
    if verdict.outcome == "interrupted":
        raise session.stop.interruption()
    return outcome


def _fault_text(fault: str, label: str) -> str:
    return (f"{fault}; trial {label} is kept to resume from its last checkpoint: free space (or make the "
            "folder writable) and run `ablate run` again")


def _fit(session, claimed: FrozenTrial, trial: Trial, checkpoint_dir: Path, heartbeat: Heartbeat,
         asked: optuna.Trial | None) -> _Verdict:
    """Train with MLflow tracking; every way training can end becomes a verdict, and
    the trial's MLflow run ends with the matching status."""
    try:
        run = session.tracker.start_trial(session.parent_id, trial, claimed.number, trial.config.device,
                                          session.spec.factors)
    except Exception as err:  # the tracking store failed: the trial fails, the study goes on
        if storage_fault(err) is not None:
            return _Verdict(TrialState.FAIL, "fault", f"MLflow: {storage_fault(err)}", attrs={"interrupted": "storage"},
                            keep_checkpoint=True)
        return _Verdict(TrialState.FAIL, "failed", f"MLflow: {one_line(err)}")
    with run:  # should ending the run below raise, the run still ends (FAILED)
        reporter = _TrialReporter(session, claimed, heartbeat, asked)
        verdict = _train_tracked(session, claimed, trial, checkpoint_dir, run, reporter)
        if verdict.outcome in ("interrupted", "fault"):
            # Ctrl-C may have hit a database write: the cursor it interrupted holds SQLite's
            # lock until the frames of its traceback are collected
            gc.collect()
            try:
                run.finish(*verdict.run_status)
            except Exception:  # the next `ablate run` ends runs that no live trial owns
                pass
        else:
            run.finish(*verdict.run_status)
    return verdict


def _train_tracked(session, claimed: FrozenTrial, trial: Trial, checkpoint_dir: Path, run,
                   reporter: Callback) -> _Verdict:
    resumed = 0
    try:
        session.set_attrs(claimed, {"mlflow_run_id": run.run_id})
        trainer = _trainer(trial, [run, reporter], checkpoint_dir, session.stop)
        resumed = trainer.start_epoch - 1
        if resumed:
            session.set_attrs(claimed, {"resumed_from_epoch": resumed})
        result = trainer.fit()
    except KeyboardInterrupt:
        session.stop.stopped = True  # a signal still to come must not cut the record of this one
        signum = session.stop.signum
        reason = "interrupted by SIGTERM" if signum == signal.SIGTERM else "interrupted by the user"
        return _Verdict(TrialState.FAIL, "interrupted", reason, attrs={"interrupted": "user"},
                        keep_checkpoint=True, resumed_from_epoch=resumed, run_status=("killed", reason))
    except optuna.TrialPruned as pruned:
        return _Verdict(TrialState.PRUNED, "pruned", str(pruned), resumed_from_epoch=resumed,
                        run_status=("killed", f"pruned: {pruned}"))
    except TrialTakenOver as lost:
        return _Verdict(TrialState.FAIL, "lost", str(lost), keep_checkpoint=True, run_status=("killed", str(lost)))
    except Exception as err:  # a bug or a bad setting in this trial: record it, go on
        fault = storage_fault(err)
        if fault is not None:  # no bug of this trial: it resumes once the disk is fixed
            return _Verdict(TrialState.FAIL, "fault", fault, attrs={"interrupted": "storage"}, keep_checkpoint=True,
                            resumed_from_epoch=resumed, run_status=("failed", fault))
        reason = one_line(err)
        return _Verdict(TrialState.FAIL, "failed", reason, resumed_from_epoch=resumed,
                        run_status=("failed", reason))
    attrs = result_attrs(result)
    if result["status"] != "finished":
        reason = one_line(result["message"])
        return _Verdict(TrialState.FAIL, "failed", reason, attrs=attrs, resumed_from_epoch=resumed,
                        run_status=(result["status"], reason))
    values, missing = objectives(session.spec, result, trainer)
    if missing:
        reason = f"objective {missing} has no value"
        return _Verdict(TrialState.FAIL, "failed", reason, attrs=attrs, resumed_from_epoch=resumed,
                        run_status=("failed", reason))
    return _Verdict(TrialState.COMPLETE, "finished", values=values, attrs=attrs, resumed_from_epoch=resumed,
                    run_status=("finished", ""))


def _trainer(trial: Trial, callbacks: list, checkpoint_dir: Path, stop) -> Trainer:
    try:
        return Trainer(trial.config, callbacks=callbacks, checkpoint_dir=checkpoint_dir, stop=stop)
    except CheckpointMismatch:
        # same cell, other execution settings (e.g. another device): start over
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        return Trainer(trial.config, callbacks=callbacks, checkpoint_dir=checkpoint_dir, stop=stop)


class _TrialReporter(Callback):
    """Tells the storage how far a trial got, stops it when its worker was taken for
    dead, and in searches reports best validation accuracy to the pruner."""

    def __init__(self, session, claimed: FrozenTrial, heartbeat: Heartbeat, asked: optuna.Trial | None):
        self.session = session
        self.claimed = claimed
        self.heartbeat = heartbeat
        self.asked = asked if session.spec.search is not None and session.spec.search.pruner else None
        self.best = -math.inf
        self.epoch_times: list[float] = []

    def on_train_start(self, trainer: Trainer) -> None:
        for metrics in trainer.history:  # a resumed trial's earlier epochs
            self._report(metrics)

    def on_epoch_end(self, metrics: dict) -> None:
        if self.heartbeat.failed is not None and storage_fault(self.heartbeat.failed) is not None:
            raise self.heartbeat.failed  # the storage cannot be written: a fault, not a takeover
        if self.heartbeat.failed is not None:
            raise TrialTakenOver(f"the heartbeat stopped: {one_line(self.heartbeat.failed)}")
        self.epoch_times.append(metrics.get("epoch_time_s") or 0.0)
        # what the status line shows: how far, how good, and how long an epoch takes
        self.session.set_attrs(self.claimed, {"epoch": metrics["epoch"], "heartbeat": time.time(),
                                              "val_acc": metrics.get("val_acc"),
                                              "epoch_s": sum(self.epoch_times) / len(self.epoch_times)})
        self._report(metrics)
        self.session.on_epoch()
        # reads the trial's reports: safe to repeat
        if self.asked is not None and self.session.store.patient(self.asked.should_prune):
            raise optuna.TrialPruned(f"best validation accuracy {self.best:.4f} after epoch {metrics['epoch']}")

    def _report(self, metrics: dict) -> None:
        if self.asked is None or metrics["val_acc"] is None:
            return
        self.best = max(self.best, metrics["val_acc"])
        # retried: reporting the same value for the same step twice is reporting it once
        self.session.store.patient(self.asked.report, self.best, metrics["epoch"])
