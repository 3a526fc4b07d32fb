"""A trial's MLflow run, fed by the Trainer as a callback: its network's cost when training
starts, every epoch's metrics (step = epoch; lists as key_00, key_01, ...), the summary
figures of ablate.metrics when it ends, and its artifacts: config.yaml, plan.json,
network.json, result.json and checkpoint/final.pt."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
import yaml

from ..engine import Callback, Trainer
from ..metrics import COSTS, summarize
from . import names
from .provenance import device_name
from .store import TrackingStore


def check_status(status: str) -> None:
    if status not in names.MLFLOW_STATUS:
        raise ValueError(f"unknown trial status {status!r}; expected one of {sorted(names.MLFLOW_STATUS)}")


def end_run(store: TrackingStore, run_id: str, status: str, reason: str = "") -> None:
    """End a run as `status` (finished, diverged, failed, killed), with the reason why."""
    check_status(status)
    tags = {names.STATUS: status}
    if reason:
        tags[names.REASON] = reason
    store.log(run_id, tags=tags)
    store.set_status(run_id, names.MLFLOW_STATUS[status])


class TrialRun(Callback):
    """One trial's child run. Use as a context manager (or call `finish` yourself): an
    exception escaping the block ends the run FAILED with the exception as its reason;
    an interruption (KeyboardInterrupt, SystemExit) ends it KILLED, as a trial to resume.
    `tracker` is the ablate.tracking.Tracker that started it."""

    def __init__(self, tracker, run_id: str, trial, on_end=None):
        self.store: TrackingStore = tracker.store
        self._on_end = on_end  # after a finished trial's run ends: its cell's summary
        self.run_id = run_id
        self.trial = trial
        self.trainer: Trainer | None = None
        self.result: dict | None = None
        self.finished = False
        self._monitor = self._start_system_metrics(tracker)

    def _start_system_metrics(self, tracker):
        if not tracker.system_metrics:
            return None
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(self.run_id, sampling_interval=tracker.system_metrics_interval_s,
                                       tracking_uri=tracker.tracking_uri)
        monitor.start()
        return monitor

    def __enter__(self) -> TrialRun:
        return self

    def __exit__(self, kind, error, tb) -> None:
        if self.finished:
            return
        if error is not None and not isinstance(error, Exception):  # Ctrl-C, SystemExit: resumable
            self.finish("killed", f"interrupted ({kind.__name__})")
        elif error is not None:
            self.finish("failed", f"{kind.__name__}: {error}")
        elif self.result is None:
            self.finish("failed", "training ended without a result")
        else:
            self.finish(self.result["status"], self.result.get("message", ""))

    # ---------------------------------------------------------------- Callback
    def on_train_start(self, trainer: Trainer) -> None:
        self.trainer = trainer
        net = trainer.net
        self.store.log(self.run_id, params={"num_local_layers": net.plan.num_local},
                       tags={"ablate.device": trainer.device, "ablate.device_name": device_name(trainer.device)})
        self.store.log(self.run_id, metrics=summarize({}, trainer.cost, COSTS), step=0)
        resumed = trainer.history
        if resumed:  # a resumed trial's run carries the epochs trained before the restart
            self.store.log(self.run_id, tags={"ablate.resumed_from_epoch": resumed[-1]["epoch"]})
            for metrics in resumed:
                self.on_epoch_end(metrics)
        self._log_files({
            "config.yaml": yaml.safe_dump(trainer.config.flat(), sort_keys=False),
            "plan.json": json.dumps(net.plan.as_dict(), indent=2),
            "network.json": json.dumps(trainer.cost, indent=2),
        })

    def on_epoch_end(self, metrics: dict) -> None:
        # the epoch is a metric too (and the step): charts can say "epoch" on their x axis, not "Step"
        self.store.log(self.run_id, metrics=metrics, step=metrics["epoch"])

    def on_train_end(self, result: dict) -> None:
        self.result = result
        self.store.log(self.run_id, metrics=summarize(result), step=0)
        self._log_files({"result.json": json.dumps(result, indent=2, default=str)})
        if result["status"] == "finished":  # a diverged network's weights are not worth keeping
            state = {k: v.detach().cpu() for k, v in self.trainer.net.state_dict().items()}
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "final.pt"
                torch.save({"model": state, "config": self.trainer.config.flat()}, path)
                self.store.log_artifact(self.run_id, path, "checkpoint")

    # ---------------------------------------------------------------- ending
    def finish(self, status: str, reason: str = "") -> None:
        """End the run: finished → FINISHED; diverged/failed → FAILED with the reason;
        killed → KILLED. The system-metrics thread stops first. A second call does nothing."""
        if self.finished:
            return
        check_status(status)
        self.finished = True
        if self._monitor is not None:
            self._monitor.finish()
            self._monitor = None
        end_run(self.store, self.run_id, status, reason if status != "finished" else "")
        if status == "finished" and self._on_end is not None:
            self._on_end()

    def _log_files(self, texts: dict[str, str]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in texts.items():
                path = Path(tmp) / name
                path.write_text(text)
                self.store.log_artifact(self.run_id, path)
