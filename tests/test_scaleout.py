"""Scaling out against real servers: `ablate run` workers on one study in PostgreSQL and
one MLflow tracking server (itself on PostgreSQL, serving the artifacts). Every cell ×
seed trains exactly once, a killed worker's trial is taken over, a database outage in
the middle of a trial costs a pause, dry run and status read the remote storage, and the
database password shows nowhere."""

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from ablate.cli import main
from ablate.spec import load_study
from ablate.study.storage import open_storage
from ablate.study.store import TrialStore
from ablate.study.liveness import HOST

from servers import PASSWORD, POSTGRES_MISSING, QUIET, postgres_binaries, running_servers
from test_study import TINY

ABLATE = Path(sys.executable).parent / "ablate"
# each trial lasts a few epochs, so that a worker can be caught in the middle of one
SETTINGS = {**TINY, "train_subset": 512, "epochs": 4}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip(POSTGRES_MISSING)
    with running_servers(binaries, tmp_path_factory.mktemp("servers")) as running:
        yield running


def write_study(folder: Path, name: str, grid: dict, seeds: list[int], **where) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    document = {"name": name, "settings": {k: v for k, v in SETTINGS.items() if k not in grid and v is not None},
                "grid": grid, "seeds": seeds, **where}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def start_worker(study: Path, *options: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([str(ABLATE), "run", str(study), "--quiet", *options],
                            env={**os.environ, **QUIET, "OMP_NUM_THREADS": "1", "ABLATE_OUTAGE_S": "60", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def trials(storage: str, name: str) -> list:
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def wait_for_a_trial_mid_training(storage_url: str, name: str, workers: list[subprocess.Popen]):
    """A RUNNING trial of one of `workers` with at least one epoch checkpointed and two
    to go, and that worker."""
    storage = open_storage(storage_url)
    by_pid = {worker.pid: worker for worker in workers}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for worker in workers:
            assert worker.poll() is None, worker.communicate()[0]
        try:
            running = storage.get_all_trials(storage.get_study_id_from_name(name), states=(TrialState.RUNNING,))
        except KeyError:  # the study is not created yet
            running = []
        for trial in running:
            attrs = trial.user_attrs
            if attrs.get("worker_pid") in by_pid and 1 <= attrs.get("epoch", 0) <= SETTINGS["epochs"] - 2:
                return trial, by_pid[attrs["worker_pid"]]
        time.sleep(0.02)
    raise AssertionError("no worker got into a trial")


def runs(tracking_uri: str, experiment: str, role: str, view=ViewType.ALL) -> list:
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], f"tags.`ablate.role` = '{role}'", run_view_type=view)


def cli(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def test_three_workers_share_the_study_and_a_killed_workers_trial_is_taken_over(servers, tmp_path, capsys):
    grid, seeds = {"lr": [0.05, 0.1]}, [0, 1]
    # the same study three ways: servers named in the file, in environment variables, as options
    in_file = write_study(tmp_path / "a", "scaleout", grid, seeds, storage=servers.storage,
                          tracking={"uri": servers.tracking_uri})
    plain = write_study(tmp_path / "b", "scaleout", grid, seeds)
    spec = load_study(in_file)
    where = ("--storage", servers.storage, "--tracking-uri", servers.tracking_uri)

    code, before = cli(capsys, "run", str(plain), "--dry-run", *where)
    assert code == 0 and before.splitlines()[-1] == "trials: 0 done · 0 running · 0 failed · 4 pending"
    assert f"optuna storage: postgresql://ablate:***@127.0.0.1:{servers.postgres.port}/optuna" in before
    assert servers.postgres.tables("optuna") == []  # a dry run creates nothing

    # the same database, named as the README and docker-compose.yml name it
    from_env = {"ABLATE_STORAGE": servers.postgres.url("optuna", scheme="postgresql+psycopg"),
                "ABLATE_TRACKING_URI": servers.tracking_uri}
    workers = [start_worker(in_file), start_worker(plain, env=from_env), start_worker(plain, *where)]
    killed, victim = wait_for_a_trial_mid_training(servers.storage, spec.name, workers)
    victim.send_signal(signal.SIGKILL)
    outputs = [worker.communicate(timeout=240)[0] for worker in workers]

    assert [w.returncode for w in workers] == [-signal.SIGKILL if w is victim else 0 for w in workers], outputs
    assert servers.postgres.query("optuna", "SELECT count(*) FROM alembic_version") == [(1,)]  # one schema, one stamp
    attempts = {}
    for trial in trials(servers.storage, spec.name):
        if "duplicate_of" not in trial.user_attrs:
            attempts.setdefault(trial.user_attrs["trial_key"], []).append(trial)
    assert sorted(attempts) == sorted(t.key for t in spec.trials)
    for key, tries in attempts.items():  # each cell × seed finished exactly once
        assert [t.state for t in tries].count(TrialState.COMPLETE) == 1, key
        assert len(tries) == (2 if key == killed.user_attrs["trial_key"] else 1), key
    dead, resumed = attempts[killed.user_attrs["trial_key"]]
    assert dead.state == TrialState.FAIL and dead.user_attrs["reason"] == f"worker died (pid {victim.pid} on {HOST})"
    assert resumed.user_attrs["resumed_from_epoch"] >= 1 and resumed.user_attrs["worker_pid"] != victim.pid

    parents = runs(servers.tracking_uri, spec.experiment, "parent", ViewType.ACTIVE_ONLY)
    children = runs(servers.tracking_uri, spec.experiment, "trial")
    assert len(parents) == 1
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["ablate.trial_key"] for r in finished) == sorted(t.key for t in spec.trials)
    assert [r.info.run_id for r in children if r.info.status != "FINISHED"] == [dead.user_attrs["mlflow_run_id"]]
    assert {r.data.tags["ablate.study_run"] for r in children} == {parents[0].info.run_id}
    # artifacts went through the server into its own folder, not to the workers' disks
    client = MlflowClient(servers.tracking_uri)
    for run in finished:
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
        assert [f.path for f in client.list_artifacts(run.info.run_id, "checkpoint")] == ["checkpoint/final.pt"]
        stored = servers.mlflow.artifacts / run.info.experiment_id / run.info.run_id / "artifacts"
        assert (stored / "checkpoint" / "final.pt").is_file()
    assert not (tmp_path / "a" / "mlartifacts").exists() and not (tmp_path / "b" / "mlartifacts").exists()

    code, after = cli(capsys, "run", str(in_file), "--dry-run")
    assert code == 0 and after.splitlines()[-1] == "trials: 4 done · 0 running · 0 failed · 0 pending"
    code, status = cli(capsys, "status", str(plain), "--storage", servers.storage)
    assert code == 0 and status.splitlines()[0] == (
        f"study scaleout (postgresql://ablate:***@127.0.0.1:{servers.postgres.port}/optuna): 4 trials — "
        "4 done, 0 running, 0 failed, 0 pending")

    assert parents[0].data.tags["ablate.optuna_storage"].endswith(
        f"://ablate:***@127.0.0.1:{servers.postgres.port}/optuna")  # by whichever worker came first
    for run in parents + children:
        assert not [v for v in [*run.data.tags.values(), *run.data.params.values()] if PASSWORD in v], run.info
    for text in [*outputs, before, after, status]:
        assert PASSWORD not in text


def test_the_optuna_storage_rides_out_a_database_restart(servers, caplog):
    store = TrialStore(servers.storage)
    assert store.patient(store.storage.get_all_studies) is not None  # connected before the outage

    servers.postgres.stop()
    restart = threading.Timer(2.0, servers.postgres.start)
    restart.start()
    with caplog.at_level(logging.WARNING, logger="ablate"):
        studies = store.patient(store.storage.get_all_studies)
    restart.join()

    assert studies is not None
    masked = servers.storage.replace(PASSWORD, "***")
    said = [r.getMessage() for r in caplog.records if r.name == "ablate"]
    assert len(said) == 2, (said, logging.getLogger("ablate").disabled, [r.getMessage() for r in caplog.records])
    assert said[0].startswith(f"the Optuna storage {masked} did not answer (")
    assert said[1].startswith(f"the Optuna storage {masked} answers again after ")
    assert PASSWORD not in caplog.text


def test_a_database_outage_in_the_middle_of_a_trial_costs_a_pause_not_the_trial(servers, tmp_path):
    study = write_study(tmp_path, "outage", {"lr": [0.05]}, [0])
    spec = load_study(study)
    # MLflow's own retries off: ablate's patience meets the outage and says so
    worker = start_worker(study, "--storage", servers.storage, "--tracking-uri", servers.tracking_uri,
                          env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    wait_for_a_trial_mid_training(servers.storage, spec.name, [worker])

    servers.postgres.stop()  # cuts every connection: Optuna's and the tracking server's
    time.sleep(4)
    servers.postgres.start()
    output = worker.communicate(timeout=240)[0]

    assert worker.returncode == 0, output
    # which store a worker meets first depends on where in its epoch the outage falls (both
    # live on the one PostgreSQL): whichever it met, it said so and rode it out
    met = re.findall(r"(the (?:MLflow tracking store|Optuna storage) \S+) did not answer", output)
    assert met, output
    assert all(f"{server} answers again" in output for server in met), output
    assert PASSWORD not in output
    assert [t.state for t in trials(servers.storage, spec.name)] == [TrialState.COMPLETE]
    assert [r.info.status for r in runs(servers.tracking_uri, spec.experiment, "trial")] == ["FINISHED"]
