"""MLflow tracking on a real SQLite store: parent run, trial runs with params, tags,
per-epoch and final metrics, artifacts, system metrics; killed runs; secrets masked."""

import json
import os
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from mlflow.entities import ViewType

from ablate.report import render, study_report
from ablate.config import EXECUTION_ONLY, TrainConfig
from ablate.spec import Trial
from ablate.spec.cells import CellEntry
from ablate.tracking import (
    Tracker,
    default_tracking_uri,
    finished_trial_runs,
    metric_history,
)
from ablate.urls import mask_url
from ablate.engine import Callback, Trainer

TINY = dict(model="resnet20", width=0.25, dataset="digits", train_subset=256, batch_size=128,
            lr=0.1, warmup_epochs=0, device="cpu")
PASSWORD = "hunter2"
STORAGE_WITH_PASSWORD = f"postgresql://ablate:{PASSWORD}@db.example.org:5432/optuna"


def make_trial(seed=0, epochs=2, cell_id="a1b2c3d4e5f6", **settings) -> Trial:
    config = TrainConfig(**{**TINY, "rule": "auglocal", "aux_depth": 2, **settings}, epochs=epochs, seed=seed)
    factors = {"rule": config.rule, "aux_depth": config.aux_depth}
    return Trial(cell_id=cell_id, seed=seed, config=config, factors=factors)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating one runs MLflow's migrations, seconds);
    the commands run in an empty directory so that a stray ./mlruns would show."""
    study_dir = tmp_path_factory.mktemp("study")
    workdir = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        uri = default_tracking_uri(study_dir)
        Tracker(uri, "warm-up").experiment_id
        yield {"uri": uri, "study_dir": study_dir, "workdir": workdir}


@pytest.fixture(scope="module")
def trained(store):
    """One real two-epoch trial logged through TrialRun, shared by the tests that read it."""
    tracker = Tracker(store["uri"], "trained", system_metrics_interval_s=0.05)
    parent = tracker.parent_run_id("trained-study")
    trial = make_trial(seed=3)
    with tracker.start_trial(parent, trial, optuna_number=7, device="cpu") as run:
        trainer = Trainer(trial.config, callbacks=[run])
        result = trainer.fit()
    return {"tracker": tracker, "parent": parent, "run_id": run.run_id, "trial": trial,
            "result": result, "trainer": trainer, "run": tracker.client.get_run(run.run_id)}


def all_runs(tracker):
    return tracker.client.search_runs([tracker.experiment_id], run_view_type=ViewType.ALL)


# ------------------------------------------------------------------------------ URIs
def test_default_tracking_uri_is_a_sqlite_database_beside_the_study(tmp_path):
    assert default_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


def test_nothing_is_written_to_a_file_store_or_mlruns(store, trained):
    assert not (store["workdir"] / "mlruns").exists()
    assert not (store["study_dir"] / "mlruns").exists()
    assert (store["study_dir"] / "mlflow.db").is_file()
    artifact_uri = trained["run"].info.artifact_uri
    assert artifact_uri.startswith((store["study_dir"] / "mlartifacts").resolve().as_uri())


@pytest.mark.parametrize("url, masked", [
    ("postgresql://ablate:hunter2@db:5432/optuna", "postgresql://ablate:***@db:5432/optuna"),
    ("postgresql+psycopg2://u:p%40ss@host/db", "postgresql+psycopg2://u:***@host/db"),
    ("mysql://u:pa@ss@host/db", "mysql://u:***@host/db"),
    ("redis://:secret@cache:6379/0", "redis://:***@cache:6379/0"),
    ("http://tracking.example.org:5000", "http://tracking.example.org:5000"),
    ("sqlite:////runs/study/mlflow.db", "sqlite:////runs/study/mlflow.db"),
    ("cannot reach postgresql://a:b@h/d (timeout)", "cannot reach postgresql://a:***@h/d (timeout)"),
])
def test_mask_url_hides_passwords_only(url, masked):
    assert mask_url(url) == masked


def test_a_missing_store_has_no_runs_and_is_not_created(tmp_path):
    uri = default_tracking_uri(tmp_path / "nowhere")
    assert finished_trial_runs(uri, "any") == []
    assert not (tmp_path / "nowhere").exists()


def test_building_a_tracker_touches_nothing(tmp_path):
    Tracker(default_tracking_uri(tmp_path / "study"), "study")
    assert not (tmp_path / "study").exists()


# ------------------------------------------------------------------------------ parent run
def test_parent_run_is_created_once_and_found_again(store):
    first = Tracker(store["uri"], "parent-once").parent_run_id("s")
    second_tracker = Tracker(store["uri"], "parent-once")
    assert second_tracker.parent_run_id("s") == first
    parents = all_runs(second_tracker)
    assert [r.info.run_id for r in parents] == [first]
    tags = parents[0].data.tags
    assert tags["ablate.study"] == "s" and tags["ablate.role"] == "parent"
    assert parents[0].info.run_name == "s"


def test_two_studies_in_one_experiment_get_two_parents(store):
    tracker = Tracker(store["uri"], "parent-two-studies")
    assert tracker.parent_run_id("a") != tracker.parent_run_id("b")


class MissesOnce:
    """The first search of parent runs sees none: another process creates one meanwhile."""

    def __init__(self, search):
        self.search, self.calls = search, 0

    def __call__(self, *args):
        self.calls += 1
        return [] if self.calls == 1 else self.search(*args)


def test_two_processes_creating_the_parent_at_once_keep_the_oldest(store, monkeypatch):
    other = Tracker(store["uri"], "parent-race").parent_run_id("s")
    late = Tracker(store["uri"], "parent-race")
    monkeypatch.setattr(late, "_runs", MissesOnce(late._runs))
    assert late.parent_run_id("s") == other
    runs = all_runs(late)
    assert len(runs) == 2  # the late creator's parent exists only as a deleted run
    assert {r.info.run_id: r.info.lifecycle_stage for r in runs}[other] == "active"
    assert sorted(r.info.lifecycle_stage for r in runs) == ["active", "deleted"]


def test_parent_status_follows_the_study(store):
    tracker = Tracker(store["uri"], "parent-status")
    parent = tracker.parent_run_id("s")
    tracker.set_parent_status(parent, "FINISHED")
    assert tracker.client.get_run(parent).info.status == "FINISHED"
    tracker.set_parent_status(parent, "RUNNING")
    assert tracker.client.get_run(parent).info.status == "RUNNING"


def test_parent_artifacts_are_logged(store, tmp_path):
    tracker = Tracker(store["uri"], "parent-artifacts")
    parent = tracker.parent_run_id("s")
    (tmp_path / "report.md").write_text("| cell |\n")
    tracker.log_parent_artifacts(parent, [tmp_path / "report.md"])
    assert [f.path for f in tracker.client.list_artifacts(parent, "report")] == ["report/report.md"]


# ------------------------------------------------------------------------------ trial run
def test_trial_run_is_a_finished_child_of_its_cell_run_under_the_study_run(trained):
    run, client = trained["run"], trained["tracker"].client
    assert run.info.status == "FINISHED"
    assert run.data.tags["ablate.study_run"] == trained["parent"]
    cell = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert cell.data.tags["ablate.role"] == "cell" and cell.data.tags["mlflow.parentRunId"] == trained["parent"]
    assert run.info.run_name == "auglocal d=2 · s3" and cell.info.run_name == "auglocal d=2"


def test_trial_run_has_the_settings_that_shape_its_cell_as_params(trained):
    params = trained["run"].data.params
    flat = trained["trial"].config.flat()
    assert set(params) == set(flat) - EXECUTION_ONLY | {"num_local_layers"}
    assert trained["run"].data.tags["ablate.exec.device"] == "cpu"
    assert params["lr"] == "0.1" and params["model"] == "resnet20" and params["milestones"] == "[]"
    assert params["head_layers"] == "None" and params["augment"] == "True"
    assert params["num_local_layers"] == str(trained["trainer"].net.plan.num_local)


def test_trial_run_tags_say_what_and_where(trained):
    tags = trained["run"].data.tags
    trial = trained["trial"]
    assert tags["ablate.study"] == "trained-study"
    assert tags["ablate.role"] == "trial"
    assert tags["ablate.cell_id"] == trial.cell_id
    assert tags["ablate.seed"] == "3"
    assert tags["ablate.trial_key"] == trial.key
    assert tags["ablate.optuna_trial"] == "7"
    assert json.loads(tags["ablate.factors"]) == {"rule": "auglocal", "aux_depth": 2}
    assert tags["ablate.device"] == "cpu"
    assert tags["ablate.status"] == "finished"
    assert tags["ablate.git_commit"]
    for package in ("ablate", "torch", "torchvision", "optuna", "mlflow", "python"):
        assert tags[f"ablate.version.{package}"]
    assert tags["ablate.version.torch"] == torch.__version__


def test_trial_run_has_per_epoch_metrics_by_step(trained):
    history = trained["result"]["history"]
    client = trained["tracker"].client
    for key in ("train_loss", "train_acc_pct", "val_acc_pct", "test_acc_pct", "lr", "epoch_time_s",
                "examples_per_s", "peak_memory_mib", "peak_rss_mib", "aux_loss_00", "aux_acc_pct_06"):
        logged = sorted((m.step, m.value) for m in client.get_metric_history(trained["run_id"], key))
        assert [step for step, _ in logged] == [1, 2], key
    assert metric_history(trained["tracker"].tracking_uri, trained["run_id"], "test_acc") == [
        (m["epoch"], pytest.approx(m["test_acc"])) for m in history]
    aux = [k for k in trained["run"].data.metrics if k.startswith("aux_loss_")]
    assert len(aux) == trained["trainer"].net.plan.num_local


def test_trial_run_has_final_best_and_cost_metrics(trained):
    metrics, result = trained["run"].data.metrics, trained["result"]
    assert metrics["final_test_acc_pct"] == pytest.approx(100 * result["final"]["test_acc"])
    assert metrics["final_val_acc_pct"] == pytest.approx(100 * result["final"]["val_acc"])
    assert metrics["best_val_acc_pct"] == pytest.approx(100 * result["best"]["val_acc"])
    assert metrics["best_test_acc_pct"] == pytest.approx(100 * result["best"]["test_acc"])
    assert metrics["best_epoch"] == result["best"]["epoch"]
    assert metrics["peak_memory_mib_max"] == pytest.approx(result["peak_memory_bytes"] / 2**20)
    assert not [k for k in metrics if k.endswith("_acc") or "_bytes" in k]  # one unit, in the name
    assert metrics["time_per_epoch_s"] == pytest.approx(result["time_per_epoch_s"])
    assert metrics["aux_flops"] > 0 and metrics["backbone_flops"] > 0 and metrics["aux_params"] > 0
    assert metrics["train_flops_per_example"] == 3 * (metrics["aux_flops"] + metrics["backbone_flops"])


def test_trial_run_has_config_plan_result_and_checkpoint_artifacts(trained, tmp_path):
    client, run_id, trial = trained["tracker"].client, trained["run_id"], trained["trial"]
    names = {f.path for folder in (None, "checkpoint") for f in client.list_artifacts(run_id, folder)}
    assert {"config.yaml", "plan.json", "result.json", "network.json", "checkpoint/final.pt"} <= names
    local = Path(client.download_artifacts(run_id, "", str(tmp_path)))
    assert yaml.safe_load((local / "config.yaml").read_text()) == trial.config.flat()
    assert json.loads((local / "plan.json").read_text()) == trained["trainer"].net.plan.as_dict()
    assert json.loads((local / "result.json").read_text())["status"] == "finished"
    checkpoint = torch.load(local / "checkpoint" / "final.pt", weights_only=True)
    assert checkpoint["config"] == trial.config.flat()
    trained["trainer"].net.load_state_dict(checkpoint["model"])


def test_system_metrics_are_logged_and_the_monitor_stops(trained):
    assert any(k.startswith("system/cpu_utilization") for k in trained["run"].data.metrics)
    assert not [t for t in threading.enumerate() if t.name == "SystemMetricsMonitor" and t.is_alive()]


def test_finished_trial_runs_reads_back_the_trial(trained):
    tracker = trained["tracker"]
    runs = finished_trial_runs(tracker.tracking_uri, "trained")
    assert [r.run_id for r in runs] == [trained["run_id"]]
    run = runs[0]
    assert (run.cell_id, run.seed, run.trial_key) == (trained["trial"].cell_id, 3, trained["trial"].key)
    assert run.factors == {"rule": "auglocal", "aux_depth": 2}
    assert run.params["rule"] == "auglocal"
    assert run.metrics["final_test_acc"] == pytest.approx(trained["result"]["final"]["test_acc"])
    assert run.status == "finished"
    assert finished_trial_runs(tracker.tracking_uri, "trained", study="another") == []


# ------------------------------------------------------------------------------ ending badly
def test_a_diverged_trial_fails_with_its_reason(store):
    tracker = Tracker(store["uri"], "diverged", system_metrics=False)
    trial = make_trial(lr=1e12, weight_decay=0, schedule="constant", rule="bp", epochs=1)
    with tracker.start_trial(tracker.parent_run_id("s"), trial, 0, "cpu") as run:
        Trainer(trial.config, callbacks=[run]).fit()
    logged = tracker.client.get_run(run.run_id)
    assert logged.info.status == "FAILED"
    assert logged.data.tags["ablate.status"] == "diverged"
    assert "not finite" in logged.data.tags["ablate.reason"]
    assert "checkpoint" not in {f.path for f in tracker.client.list_artifacts(run.run_id)}
    assert finished_trial_runs(tracker.tracking_uri, "diverged") == []


def test_an_exception_fails_the_run_with_the_exception_as_reason(store):
    tracker = Tracker(store["uri"], "raised", system_metrics=False)
    with pytest.raises(RuntimeError):
        with tracker.start_trial(tracker.parent_run_id("s"), make_trial(), 0, "cpu") as run:
            raise RuntimeError("out of disk")
    logged = tracker.client.get_run(run.run_id)
    assert logged.info.status == "FAILED"
    assert logged.data.tags["ablate.status"] == "failed"
    assert logged.data.tags["ablate.reason"] == "RuntimeError: out of disk"


def test_an_interrupted_trial_is_killed_not_failed(store):
    tracker = Tracker(store["uri"], "interrupted", system_metrics=False)
    with pytest.raises(KeyboardInterrupt):
        with tracker.start_trial(tracker.parent_run_id("s"), make_trial(), 0, "cpu") as run:
            raise KeyboardInterrupt
    logged = tracker.client.get_run(run.run_id)
    assert logged.info.status == "KILLED" and logged.data.tags["ablate.status"] == "killed"


def test_runs_left_running_by_a_dead_worker_are_marked_killed(store):
    tracker = Tracker(store["uri"], "stale", system_metrics=False)
    parent = tracker.parent_run_id("s")
    dead = tracker.start_trial(parent, make_trial(seed=0), 0, "cpu")
    alive = tracker.start_trial(parent, make_trial(seed=1), 1, "cpu")
    running = tracker.running_trial_runs("s")
    assert {r["trial_key"] for r in running} == {dead.trial.key, alive.trial.key}
    assert {(r["host"], r["pid"]) for r in running} == {(socket.gethostname(), os.getpid())}

    ended = tracker.mark_stale_runs("s", is_alive=lambda trial_key, run_id: run_id == alive.run_id)

    assert ended == [dead.run_id]
    killed = tracker.client.get_run(dead.run_id)
    assert killed.info.status == "KILLED" and killed.info.end_time is not None
    assert killed.data.tags["ablate.status"] == "killed"
    assert "stopped" in killed.data.tags["ablate.reason"]
    assert tracker.client.get_run(alive.run_id).info.status == "RUNNING"
    tracker.terminate_run(alive.run_id, "killed", "interrupted")
    assert tracker.client.get_run(alive.run_id).info.status == "KILLED"
    assert tracker.running_trial_runs("s") == []


class StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, metrics):
        raise KeyboardInterrupt


def test_a_resumed_trial_run_carries_the_epochs_before_the_restart(store, tmp_path):
    tracker = Tracker(store["uri"], "resumed", system_metrics=False)
    parent = tracker.parent_run_id("s")
    trial = make_trial(epochs=2)
    with pytest.raises(KeyboardInterrupt):
        Trainer(trial.config, checkpoint_dir=tmp_path, callbacks=[StopAfterFirstEpoch()]).fit()
    with tracker.start_trial(parent, trial, 1, "cpu") as run:
        Trainer(trial.config, checkpoint_dir=tmp_path, callbacks=[run]).fit()
    assert [s for s, _ in metric_history(tracker.tracking_uri, run.run_id, "test_acc")] == [1, 2]
    assert tracker.client.get_run(run.run_id).data.tags["ablate.resumed_from_epoch"] == "1"


# ------------------------------------------------------------------------------ secrets
def test_passwords_never_reach_params_or_tags(store):
    tracker = Tracker(store["uri"], "secrets", system_metrics=False)
    parent = tracker.parent_run_id("s", tags={"ablate.optuna_storage": STORAGE_WITH_PASSWORD})
    run = tracker.start_trial(parent, make_trial(data_root=f"{STORAGE_WITH_PASSWORD}/data"), 0, "cpu")
    run.finish("failed", f"could not reach {STORAGE_WITH_PASSWORD}")
    for run_id in (parent, run.run_id):
        data = tracker.client.get_run(run_id).data
        values = list(data.tags.values()) + list(data.params.values())
        assert not [v for v in values if PASSWORD in v]
    assert tracker.client.get_run(parent).data.tags["ablate.optuna_storage"] == mask_url(STORAGE_WITH_PASSWORD)
    assert "ablate:***@" in tracker.client.get_run(run.run_id).data.tags["ablate.reason"]
    assert PASSWORD not in repr(Tracker(f"http://ablate:{PASSWORD}@tracking:5000", "x", system_metrics=False))


# ------------------------------------------------------------------------------ report
def test_the_report_reads_the_trial_back_from_mlflow(store, trained, tmp_path):
    trial = trained["trial"]
    spec = SimpleNamespace(name="trained-study", directory=store["study_dir"], tracking_uri=store["uri"],
                           experiment="trained", trials=(trial,), seeds=(3, 4), reference=None,
                           layout=(CellEntry(trial.cell_id, trial.factors, trial.cell_id),), aliases=dict,
                           path=store["study_dir"] / "trained.yaml",
                           overrides={"epochs": 1})
    report = study_report(spec, out_dir=tmp_path)
    [cell] = report.cells
    assert cell.n_text == "1 of 2, missing seeds: 4"
    assert report.commands[0].endswith("trained.yaml --set epochs=1")
    assert cell.stats["final_test_acc_pct"].mean == pytest.approx(100 * trained["result"]["final"]["test_acc"])
    assert cell.stats["aux_mflops"].mean == pytest.approx(trained["run"].data.metrics["aux_flops"] / 1e6)
    assert "| rule=auglocal, aux_depth=2 | 1 of 2, missing seeds: 4 |" in render(report, "markdown")
    trained["tracker"].log_parent_artifacts(trained["parent"], report.files)
    logged = {f.path for f in trained["tracker"].client.list_artifacts(trained["parent"], "report")}
    assert {"report/report.md", "report/accuracy_vs_peak_memory.png"} <= logged
