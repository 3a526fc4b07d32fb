"""Running a study through Optuna in one process: every cell × seed trains exactly once,
a finished study trains nothing, a partial one only what is missing, failures are
recorded with their reason and retried on request, and a trial whose worker died is
failed, its MLflow run ended, and resumed from its checkpoint."""

import datetime
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from ablate.spec import load_study
from ablate.study import StudyStorageError, resolve_storage, run_study, study_status
from ablate.study.attempts import staleness
from ablate.study.session import Session
from ablate.tracking import Tracker, default_tracking_uri
from ablate.engine import Callback, Trainer
from ablate.engine.stopping import DEFAULT_GRACE_S, notice
from ablate.study.liveness import HOST, PID_SCOPE

TINY = {"dataset": "digits", "model": "resnet20", "width": 0.25, "train_subset": 256, "batch_size": 128,
        "epochs": 1, "schedule": "constant", "device": "cpu", "rule": "bp"}


def write_study(folder: Path, name: str, *, grid=None, seeds=(0,), search=None, **settings) -> Path:
    fixed = {k: v for k, v in {**TINY, **settings}.items() if k not in (grid or {}) and v is not None}
    document = {"name": name, "settings": fixed, "seeds": list(seeds)}
    document.update({"grid": grid} if search is None else {"search": search})
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    """One MLflow store for the module: creating one runs MLflow's migrations (seconds)."""
    uri = default_tracking_uri(tmp_path_factory.mktemp("mlflow"))
    Tracker(uri, "warm-up").experiment_id
    return uri


def run(spec, tracking_uri, **options):
    lines = []
    summary = run_study(spec, tracking_uri=tracking_uri, progress=False, echo=lines.append, **options)
    return summary, lines


def optuna_trials(spec, storage=None):
    url = resolve_storage(spec, storage)
    if url.startswith("journal://"):
        url = JournalStorage(JournalFileBackend(url[len("journal://"):]))
    return optuna.load_study(study_name=spec.name, storage=url).get_trials(deepcopy=False)


def by_key(trials):
    grouped = {}
    for trial in trials:
        grouped.setdefault(trial.user_attrs["trial_key"], []).append(trial)
    return grouped


def mlflow_runs(tracking_uri, experiment, role="trial"):
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], f"tags.`ablate.role` = '{role}'", run_view_type=ViewType.ALL)


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


# ------------------------------------------------------------------------------ grids
def test_a_grid_trains_every_cell_and_seed_once_and_a_second_run_trains_nothing(tmp_path, tracking_uri):
    spec = load_study(write_study(tmp_path, "grid", grid={"lr": [0.05, 0.1]}, seeds=[0, 1]))

    summary, lines = run(spec, tracking_uri)

    assert summary.trained == 4 and summary.failed == [] and summary.done == summary.total == 4
    trials = optuna_trials(spec)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert sorted(by_key(trials)) == sorted(t.key for t in spec.trials)
    for trial in trials:  # the Optuna value is best validation accuracy, never test accuracy
        assert trial.value == trial.user_attrs["best_val_acc"]
        assert 0 <= trial.user_attrs["final_test_acc"] <= 1
    children = mlflow_runs(tracking_uri, spec.experiment)
    parents = mlflow_runs(tracking_uri, spec.experiment, role="parent")
    assert len(parents) == 1
    assert sorted(r.data.tags["ablate.trial_key"] for r in children) == sorted(t.key for t in spec.trials)
    assert {r.info.status for r in children} == {"FINISHED"}
    assert {r.data.tags["ablate.study_run"] for r in children} == {parents[0].info.run_id}
    assert {t.user_attrs["mlflow_run_id"] for t in trials} == {r.info.run_id for r in children}
    assert not any((spec.directory / "checkpoints").glob("*/checkpoint.pt"))  # final weights live in MLflow
    assert len([line for line in lines if " finished" in line]) == 4

    summary, lines = run(spec, tracking_uri)

    assert summary.trained == 0
    assert lines[-1] == "study grid: all 4 trials finished; nothing to train"
    assert len(optuna_trials(spec)) == 4 and len(mlflow_runs(tracking_uri, spec.experiment)) == 4


def test_a_partial_study_trains_only_what_is_missing(tmp_path, tracking_uri):
    path = write_study(tmp_path, "partial", grid={"lr": [0.05, 0.1]}, seeds=[0])
    run(load_study(path), tracking_uri)
    first = {t.user_attrs["trial_key"]: t.number for t in optuna_trials(load_study(path))}

    spec = load_study(write_study(tmp_path, "partial", grid={"lr": [0.05, 0.1]}, seeds=[0, 1]))
    summary, lines = run(spec, tracking_uri)

    assert summary.trained == 2 and summary.already_finished == 2
    trained_now = [line for line in lines if " finished" in line]
    assert len(trained_now) == 2 and all("· s1 " in line for line in trained_now)
    grouped = by_key(optuna_trials(spec))
    assert all(len(attempts) == 1 and attempts[0].state == TrialState.COMPLETE for attempts in grouped.values())
    assert {key: grouped[key][0].number for key in first} == first  # the old trials were not touched
    assert len(mlflow_runs(tracking_uri, spec.experiment)) == 4


def test_a_trial_queued_twice_is_trained_once_and_the_copy_marked_duplicate(tmp_path, tracking_uri):
    spec = load_study(write_study(tmp_path, "twice", grid={"lr": [0.05, 0.1]}))
    spec.directory.mkdir(parents=True)
    study = optuna.create_study(study_name=spec.name, storage=resolve_storage(spec), direction="maximize")
    doubled = spec.trials[0]
    for _ in range(2):  # two processes enqueueing the same missing key at the same moment
        study.enqueue_trial({}, user_attrs={"trial_key": doubled.key, "slot": doubled.key,
                                            "cell_id": doubled.cell_id, "seed": doubled.seed})

    summary, _ = run(spec, tracking_uri)

    assert summary.trained == 2 and summary.duplicates == 1
    attempts = sorted(by_key(optuna_trials(spec))[doubled.key], key=lambda t: t.number)
    assert [t.state for t in attempts] == [TrialState.COMPLETE, TrialState.FAIL]
    assert attempts[1].user_attrs["duplicate_of"] == attempts[0].number
    assert study_status(spec).counts() == {"done": 2, "running": 0, "failed": 0, "pending": 0}
    assert len(mlflow_runs(tracking_uri, spec.experiment)) == 2


# ------------------------------------------------------------------------------ failures
def test_a_diverging_trial_fails_with_its_reason_the_others_finish_and_retry_reruns_it(tmp_path, tracking_uri):
    path = write_study(tmp_path, "diverge", grid={"lr": [1.0e12, 0.05]})
    spec = load_study(path)
    diverging, healthy = spec.trials
    assert study_status(spec).counts() == {"done": 0, "running": 0, "failed": 0, "pending": 2}
    assert not spec.directory.exists()  # status creates no storage

    summary, lines = run(spec, tracking_uri)

    assert summary.trained == 1 and len(summary.failed) == 1
    assert diverging.key in summary.failed[0][0] and "not finite" in summary.failed[0][1]
    grouped = by_key(optuna_trials(spec))
    assert grouped[healthy.key][0].state == TrialState.COMPLETE
    failed = grouped[diverging.key][0]
    assert failed.state == TrialState.FAIL and "diverged at epoch 1" in failed.user_attrs["reason"]
    runs = {r.data.tags["ablate.trial_key"]: r for r in mlflow_runs(tracking_uri, spec.experiment)}
    assert runs[diverging.key].info.status == "FAILED" and runs[diverging.key].data.tags["ablate.status"] == "diverged"
    assert runs[healthy.key].info.status == "FINISHED"
    assert "`ablate run --retry-failed`" in lines[-1]

    summary, lines = run(spec, tracking_uri)  # failures stay failed without --retry-failed
    assert summary.trained == 0 and summary.failed == [] and "1 failed" in lines[-1]

    more_seeds = load_study(write_study(tmp_path, "diverge", grid={"lr": [1.0e12, 0.05]}, seeds=[0, 1]))
    status = study_status(more_seeds)
    assert status.counts() == {"done": 1, "running": 0, "failed": 1, "pending": 2}
    rows = {row.key: row for row in status.trials}
    assert rows[diverging.key].state == "failed" and "lower the lr" in rows[diverging.key].detail
    assert rows[healthy.key].state == "done" and rows[healthy.key].value == grouped[healthy.key][0].value
    text = status.render()
    assert f"cell {diverging.cell_id}" in text and "lower the lr" in text and "pending" in text

    summary, lines = run(spec, tracking_uri, retry_failed=True)

    trained_now = [line for line in lines if line.startswith("[")]
    assert len(trained_now) == 1 and diverging.key in trained_now[0]  # the failed cell only
    grouped = by_key(optuna_trials(spec))
    assert [t.state for t in grouped[diverging.key]] == [TrialState.FAIL, TrialState.FAIL]
    assert len(grouped[healthy.key]) == 1


def test_a_trial_that_raises_is_failed_with_the_exception_and_the_study_goes_on(tmp_path, tracking_uri):
    empty = tmp_path / "no-data"
    empty.mkdir()
    spec = load_study(write_study(tmp_path, "raises", grid={"dataset": ["cifar10", "digits"]},
                                  data_root=str(empty), download=False))
    missing, present = spec.trials

    summary, _ = run(spec, tracking_uri)

    assert summary.trained == 1 and len(summary.failed) == 1
    grouped = by_key(optuna_trials(spec))
    reason = grouped[missing.key][0].user_attrs["reason"]
    assert grouped[missing.key][0].state == TrialState.FAIL
    assert reason.startswith("DataError: ") and "\n" not in reason
    assert grouped[present.key][0].state == TrialState.COMPLETE
    runs = {r.data.tags["ablate.trial_key"]: r for r in mlflow_runs(tracking_uri, spec.experiment)}
    assert runs[missing.key].info.status == "FAILED" and runs[missing.key].data.tags["ablate.reason"] == reason


# ------------------------------------------------------------------------------ interruptions
class _StopAfterEpoch(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, metrics):
        if metrics["epoch"] == self.epoch:
            raise RuntimeError("stop")


def test_a_dead_workers_trial_is_failed_its_run_killed_and_it_resumes_from_its_checkpoint(tmp_path, tracking_uri):
    spec = load_study(write_study(tmp_path, "stale", grid={"lr": [0.05]}, epochs=2))
    trial = spec.trials[0]
    checkpoint_dir = spec.directory / "checkpoints" / trial.key
    with pytest.raises(RuntimeError):  # the dead worker got through epoch 1 of 2
        Trainer(trial.config, callbacks=[_StopAfterEpoch(1)], checkpoint_dir=checkpoint_dir).fit()
    study = optuna.create_study(study_name=spec.name, storage=resolve_storage(spec), direction="maximize")
    study.enqueue_trial({}, user_attrs={"trial_key": trial.key, "slot": trial.key, "cell_id": trial.cell_id,
                                        "seed": trial.seed})
    dead = study.ask()  # claims the queued trial: RUNNING
    tracker = Tracker(tracking_uri, spec.experiment, system_metrics=False)
    orphan = tracker.start_trial(tracker.parent_run_id(spec.name), trial, dead.number, "cpu")
    pid = dead_pid()
    for key, value in {"worker_host": HOST, "worker_pid": pid, "worker_pid_scope": PID_SCOPE, "heartbeat": time.time(),
                       "checkpoint_dir": str(checkpoint_dir), "mlflow_run_id": orphan.run_id}.items():
        dead.set_user_attr(key, value)
    assert study_status(spec).trials[0].state == "running"

    summary, lines = run(spec, tracking_uri)

    assert lines[0] == (f"trial {dead.number} ({trial.key}): worker died (pid {pid} on {HOST}); "
                        "it will resume from its checkpoint")
    assert summary.trained == 1
    old, new = sorted(by_key(optuna_trials(spec))[trial.key], key=lambda t: t.number)
    assert old.state == TrialState.FAIL and old.user_attrs["reason"] == f"worker died (pid {pid} on {HOST})"
    assert new.state == TrialState.COMPLETE
    assert new.user_attrs["resumed_from_epoch"] == 1 and new.user_attrs["epochs_completed"] == 2
    runs = {r.info.run_id: r for r in mlflow_runs(tracking_uri, spec.experiment)}
    assert runs[orphan.run_id].info.status == "KILLED"
    assert runs[new.user_attrs["mlflow_run_id"]].info.status == "FINISHED"
    assert not checkpoint_dir.exists()


def test_a_trial_on_another_host_is_waited_for_while_it_beats_and_taken_over_when_it_stops(tmp_path, tracking_uri):
    spec = load_study(write_study(tmp_path, "elsewhere", grid={"lr": [0.05]}))
    trial = spec.trials[0]
    spec.directory.mkdir(parents=True)
    study = optuna.create_study(study_name=spec.name, storage=resolve_storage(spec), direction="maximize")
    study.enqueue_trial({}, user_attrs={"trial_key": trial.key, "slot": trial.key, "cell_id": trial.cell_id,
                                        "seed": trial.seed})
    remote = study.ask()
    pid = dead_pid()  # dead here, but it names a process on the other host: only the heartbeat counts
    for key, value in {"worker_host": "gpu-box-7", "worker_pid": pid, "worker_pid_scope": "other-boot/pid:[1]",
                       "heartbeat": time.time(), "epoch": 3, "epochs": 10}.items():
        remote.set_user_attr(key, value)
    row = study_status(spec).trials[0]
    assert (row.state, row.epoch, row.epochs, row.detail) == ("running", 3, 10, f"pid {pid} on gpu-box-7")

    quiet_from = time.time() + 3

    def beat_for_three_seconds():
        while time.time() < quiet_from:
            remote.set_user_attr("heartbeat", time.time())
            time.sleep(0.2)

    beater = threading.Thread(target=beat_for_three_seconds)
    beater.start()
    summary, lines = run(spec, tracking_uri, stale_after_s=1.5)
    beater.join()

    assert lines[0] == "waiting for 1 trial running in other processes, to take over any whose worker dies"
    assert lines[1].startswith(f"trial {remote.number} ({trial.key}): worker died (no heartbeat from pid {pid} "
                               "on gpu-box-7 for ")
    assert summary.trained == 1 and summary.done == 1
    taken_over, retrained = optuna_trials(spec)
    assert (taken_over.state, retrained.state) == (TrialState.FAIL, TrialState.COMPLETE)
    assert taken_over.datetime_complete.timestamp() > quiet_from  # never while it beat


def test_a_worker_on_another_host_is_judged_by_its_heartbeat_alone():
    now = time.time()
    start = datetime.datetime.fromtimestamp(now - 1000)

    def running(**attrs):
        return optuna.trial.FrozenTrial(number=0, state=TrialState.RUNNING, value=None, datetime_start=start,
                                        datetime_complete=None, params={}, distributions={}, user_attrs=attrs,
                                        system_attrs={}, intermediate_values={}, trial_id=0)

    dead = dead_pid()
    here = {"worker_host": HOST, "worker_pid": dead, "worker_pid_scope": PID_SCOPE}
    there = {"worker_host": HOST, "worker_pid": dead, "worker_pid_scope": "another-boot/pid:[4026531836]"}

    assert staleness(running(**here, heartbeat=now), now, 60) == f"worker died (pid {dead} on {HOST})"
    assert staleness(running(**there, heartbeat=now - 30), now, 60) is None  # same host name, other container
    assert staleness(running(**there, heartbeat=now - 61), now, 60) == (
        f"worker died (no heartbeat from pid {dead} on {HOST} for 61 s)")
    # after an outage of the storage, silence counts from when it answered again
    assert staleness(running(**there, heartbeat=now - 300), now, 60, heard_since=now - 20) is None
    assert staleness(running(**there, heartbeat=now - 300), now, 60, heard_since=now - 70) is not None
    assert staleness(running(), now, 60) == "worker died (no heartbeat from its worker for 1000 s)"


def press_ctrl_c_once(path: Path) -> threading.Thread:
    """A started thread that sends this process SIGINT once `path` exists (or after a minute)."""
    def press():
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press)
    presser.start()
    return presser


def test_ctrl_c_stops_at_the_epoch_end_and_the_next_run_resumes_the_trial(tmp_path, tracking_uri):
    spec = load_study(write_study(tmp_path, "ctrl-c", grid={"lr": [0.05]}, epochs=12))
    trial = spec.trials[0]
    checkpoint = spec.directory / "checkpoints" / trial.key / "checkpoint.pt"
    presser = press_ctrl_c_once(checkpoint)  # after the first epoch
    lines = []
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, tracking_uri=tracking_uri, progress=False, echo=lines.append)
    presser.join()

    assert lines == [notice(signal.SIGINT, DEFAULT_GRACE_S)]

    interrupted = optuna_trials(spec)[0]
    assert interrupted.state == TrialState.FAIL and interrupted.user_attrs["reason"] == "interrupted by the user"
    assert checkpoint.exists()
    status = study_status(spec).trials[0]
    assert status.state == "pending" and "resumes from its checkpoint" in status.detail
    runs = {r.info.run_id: r for r in mlflow_runs(tracking_uri, spec.experiment)}
    assert runs[interrupted.user_attrs["mlflow_run_id"]].info.status == "KILLED"

    summary, _ = run(spec, tracking_uri)

    resumed = optuna_trials(spec)[-1]
    assert summary.trained == 1 and resumed.state == TrialState.COMPLETE
    assert resumed.user_attrs["resumed_from_epoch"] >= 1 and resumed.user_attrs["epochs_completed"] == 12


# ------------------------------------------------------------------------------ searches
def test_a_search_samples_the_space_until_the_budget_is_spent(tmp_path, tracking_uri):
    search = {"sampler": "random", "n_trials": 3, "objectives": ["best_val_acc"], "pruner": "median",
              "space": {"lr": {"low": 0.01, "high": 0.2, "log": True}}}
    spec = load_study(write_study(tmp_path, "search", search=search, lr=None, epochs=2))

    summary, _ = run(spec, tracking_uri)

    trials = optuna_trials(spec)
    assert summary.trained == 3 and [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert all(0.01 <= t.params["lr"] <= 0.2 for t in trials)
    assert len({t.params["lr"] for t in trials}) == 3
    for t in trials:  # the pruner saw best validation accuracy so far after every epoch
        assert sorted(t.intermediate_values) == [1, 2] and t.intermediate_values[2] == t.value
    runs = {r.data.tags["ablate.trial_key"]: r for r in mlflow_runs(tracking_uri, spec.experiment)}
    assert sorted(runs) == sorted(t.user_attrs["trial_key"] for t in trials)
    for t in trials:
        assert float(runs[t.user_attrs["trial_key"]].data.params["lr"]) == pytest.approx(t.params["lr"])
    assert study_status(spec).counts() == {"done": 3, "running": 0, "failed": 0, "pending": 0}

    summary, lines = run(spec, tracking_uri)

    assert summary.trained == 0 and lines[-1] == "study search: all 3 trials finished; nothing to train"


def test_a_search_for_fewer_auxiliary_flops_optimises_the_networks_own_cost(tmp_path, tracking_uri, monkeypatch):
    """The cost a search optimises is computed once, from the settings, on the meta device:
    it never runs the trained network, wherever that network lives (on a GPU it once ran a
    CUDA network on a CPU tensor and crashed the worker)."""
    search = {"sampler": "random", "n_trials": 2, "objectives": ["aux_flops"],
              "space": {"aux_depth": {"choices": [1, 3]}}}
    spec = load_study(write_study(tmp_path, "cost", search=search, rule="auglocal", lr=0.05))
    fit = Trainer.fit

    def fit_then_move_the_network_away(trainer):
        result = fit(trainer)
        trainer.net.to("meta")  # a network describing itself would now fail
        return result

    monkeypatch.setattr(Trainer, "fit", fit_then_move_the_network_away)
    summary, _ = run(spec, tracking_uri)

    trials = optuna_trials(spec)
    assert summary.trained == 2 and [t.state for t in trials] == [TrialState.COMPLETE] * 2
    runs = {r.data.tags["ablate.trial_key"]: r for r in mlflow_runs(tracking_uri, spec.experiment)}
    for t in trials:
        assert t.value == runs[t.user_attrs["trial_key"]].data.metrics["aux_flops"] > 0


# ------------------------------------------------------------------------------ claiming
def test_two_sessions_claiming_one_waiting_trial_in_interleaved_order_give_it_to_one(tmp_path, tracking_uri):
    """Both read the queue before either claims: the storage lets exactly one move the
    trial to RUNNING (what Optuna's private Study._pop_waiting_trial_id relies on)."""
    spec = load_study(write_study(tmp_path, "interleaved", grid={"lr": [0.05]}))
    first, second = (Session(spec, resolve_storage(spec), tracking_uri) for _ in range(2))
    first.enqueue_missing()
    seen_by_first, seen_by_second = first._waiting(), second._waiting()
    assert [t.number for t in seen_by_first] == [t.number for t in seen_by_second] == [0]

    assert first.store.claim(seen_by_first[0]._trial_id) is True
    assert second.store.claim(seen_by_second[0]._trial_id) is False
    assert second._claim() is None and first.store.trial(seen_by_first[0]._trial_id).state == TrialState.RUNNING


# ------------------------------------------------------------------------------ storage
def test_default_storage_is_sqlite_for_one_process_a_journal_for_several_and_is_kept(tmp_path):
    spec = load_study(write_study(tmp_path, "where", grid={"lr": [0.05, 0.1]}))
    home = spec.directory.resolve()

    assert resolve_storage(spec, None, 1) == f"sqlite:///{home / 'optuna.db'}"
    assert resolve_storage(spec, None, 4) == f"journal://{home / 'optuna.journal'}"
    home.mkdir(parents=True)
    (home / "optuna.journal").touch()  # started with --jobs 4, resumed with --jobs 1
    assert resolve_storage(spec, None, 1) == f"journal://{home / 'optuna.journal'}"
    assert resolve_storage(spec, "shared.journal", 1) == f"journal://{Path.cwd().resolve() / 'shared.journal'}"
    url = "postgresql://user:pw@db.example.org/optuna"
    assert resolve_storage(spec, url, 8) == url

    in_file = load_study(write_study(tmp_path, "where-file", grid={"lr": [0.05]}))
    document = yaml.safe_load(in_file.path.read_text())
    in_file.path.write_text(yaml.safe_dump({**document, "storage": "sqlite:///state/optuna.db"}))
    assert resolve_storage(load_study(in_file.path)) == f"sqlite:///{tmp_path.resolve() / 'state' / 'optuna.db'}"


def test_an_unusable_storage_is_one_line_without_the_password_and_creates_nothing(tmp_path, tracking_uri):
    spec = load_study(write_study(tmp_path, "bad-storage", grid={"lr": [0.05]}))

    with pytest.raises(StudyStorageError) as caught:
        run(spec, tracking_uri, storage="postgresql://ablate:hunter2@127.0.0.1:9/optuna")

    message = str(caught.value)
    assert "\n" not in message and "hunter2" not in message
    assert message.startswith("cannot reach the Optuna storage postgresql://ablate:***@127.0.0.1:9/optuna: ")
    assert "Connection refused; start the database server or fix --storage" in message
    assert not spec.directory.exists()
    assert MlflowClient(tracking_uri).get_experiment_by_name(spec.experiment) is None
