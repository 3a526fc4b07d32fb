"""Several processes on one study, and a real `kill -9`: each cell × seed is trained
exactly once, none is lost, and a killed trial resumes from its last checkpoint."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from optuna.trial import TrialState

from ablate.spec import load_study
from ablate.study import resolve_storage, run_study
from ablate.study.liveness import HOST

from test_study import by_key, mlflow_runs, optuna_trials, tracking_uri, write_study  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[1]
# What `ablate run STUDY --storage S --tracking-uri T --jobs 1` does, without the CLI.
RUN_STUDY = """
import sys
import torch
torch.set_num_threads(1)
from ablate.spec import load_study
from ablate.study import run_study
summary = run_study(load_study(sys.argv[1]), storage=sys.argv[2], tracking_uri=sys.argv[3], progress=False)
print("trained", summary.trained, "duplicates", summary.duplicates)
"""


def start_run(path: Path, storage: str, tracking_uri: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUN_STUDY, str(path), storage, tracking_uri], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def assert_each_trial_trained_exactly_once(spec, storage, tracking_uri):
    grouped = by_key(optuna_trials(spec, storage))
    assert sorted(grouped) == sorted(t.key for t in spec.trials)  # none lost
    for key, attempts in grouped.items():
        trained = [t for t in attempts if "duplicate_of" not in t.user_attrs]
        assert [t.state for t in trained] == [TrialState.COMPLETE], key  # none twice
    runs = mlflow_runs(tracking_uri, spec.experiment)
    assert sorted(r.data.tags["ablate.trial_key"] for r in runs) == sorted(t.key for t in spec.trials)
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["ablate.study_run"] for r in runs}) == 1


def test_two_processes_on_one_study_train_every_trial_exactly_once(tmp_path, tracking_uri):
    path = write_study(tmp_path, "shared", grid={"lr": [0.02, 0.05, 0.1]}, seeds=[0, 1], epochs=2)
    spec = load_study(path)
    storage = str(tmp_path / "shared.journal")

    workers = [start_run(path, storage, tracking_uri) for _ in range(2)]
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert_each_trial_trained_exactly_once(spec, storage, tracking_uri)
    trained = sum(int(output.split("trained ")[-1].split()[0]) for output in outputs)
    assert trained == 6, outputs


def test_jobs_runs_worker_processes_that_share_the_study(tmp_path, tracking_uri):
    spec = load_study(write_study(tmp_path, "jobs", grid={"lr": [0.02, 0.05, 0.1]}, seeds=[0, 1], epochs=2))
    lines = []

    summary = run_study(spec, jobs=2, tracking_uri=tracking_uri, progress=True, echo=lines.append)

    assert resolve_storage(spec, None, 2).endswith("optuna.journal")
    assert summary.trained == 6 and summary.done == 6 and summary.notes == []
    assert len([line for line in lines if " finished" in line]) == 6
    assert_each_trial_trained_exactly_once(spec, None, tracking_uri)
    assert (spec.directory / "optuna.journal").exists() and not (spec.directory / "optuna.db").exists()

    summary = run_study(spec, jobs=1, tracking_uri=tracking_uri, progress=False, echo=lines.append)
    assert summary.trained == 0 and lines[-1] == "study jobs: all 6 trials finished; nothing to train"


def test_a_study_killed_mid_trial_keeps_finished_trials_and_resumes_the_killed_one(tmp_path, tracking_uri):
    path = write_study(tmp_path, "kill", grid={"lr": [0.05, 0.1]}, epochs=10, train_subset=None)
    spec = load_study(path)
    first, second = spec.trials
    second_checkpoint = spec.directory / "checkpoints" / second.key / "checkpoint.pt"

    worker = start_run(path, resolve_storage(spec), tracking_uri)
    deadline = time.monotonic() + 90
    while not second_checkpoint.exists():  # the first trial is done, the second has an epoch saved
        assert worker.poll() is None, worker.communicate()[0]
        assert time.monotonic() < deadline, "the worker never reached the second trial"
        time.sleep(0.01)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)

    before = by_key(optuna_trials(spec))
    assert [t.state for t in before[first.key]] == [TrialState.COMPLETE]
    assert [t.state for t in before[second.key]] == [TrialState.RUNNING], "the kill came after the trial ended"
    killed_run = before[second.key][0].user_attrs["mlflow_run_id"]
    first_run = before[first.key][0].user_attrs["mlflow_run_id"]
    lines = []

    summary = run_study(spec, tracking_uri=tracking_uri, progress=False, echo=lines.append)

    assert lines[0].startswith(f"trial {before[second.key][0].number} ({second.key}): worker died (pid {worker.pid} "
                               f"on {HOST})")
    assert summary.trained == 1
    after = by_key(optuna_trials(spec))
    assert [(t.number, t.state) for t in after[first.key]] == [(before[first.key][0].number, TrialState.COMPLETE)]
    old, new = sorted(after[second.key], key=lambda t: t.number)
    assert old.state == TrialState.FAIL and old.user_attrs["reason"] == f"worker died (pid {worker.pid} on {HOST})"
    assert new.state == TrialState.COMPLETE
    assert new.user_attrs["resumed_from_epoch"] >= 1 and new.user_attrs["epochs_completed"] == 10
    runs = {r.info.run_id: r for r in mlflow_runs(tracking_uri, spec.experiment)}
    assert runs[killed_run].info.status == "KILLED"
    assert runs[new.user_attrs["mlflow_run_id"]].info.status == "FINISHED"
    assert runs[first_run].info.status == "FINISHED"
    assert len([r for r in runs.values() if r.data.tags["ablate.trial_key"] == first.key]) == 1
