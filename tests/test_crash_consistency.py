"""Crash consistency: an analysis claimed by a dead process is taken over at once;
interrupted trials resume before new ones are claimed; the Optuna storage and the MLflow
store are reconciled at start (a FINISHED MLflow run is never trained again; a finished
trial without its MLflow run is one line with the fix)."""

import os
import time

from optuna.trial import TrialState

from ablate.spec import load_study
from ablate.study import resolve_storage, study_status
from ablate.study.analyses import CLAIM_EXPIRES_S, claim_is_held
from ablate.study.liveness import HOST, PID_SCOPE
from ablate.study.session import Session
from ablate.tracking import default_tracking_uri

from test_study import dead_pid, mlflow_runs, optuna_trials, run, tracking_uri, write_study  # noqa: F401 (fixture)


def test_an_analysis_claim_of_a_dead_process_is_taken_over_at_once_and_a_live_ones_is_kept():
    now = time.time()
    dead, alive = dead_pid(), os.getpid()
    assert not claim_is_held(f"{PID_SCOPE}|{HOST}|{dead}|ab12cd34|{now:.0f}", now)  # the same rule as trials
    assert claim_is_held(f"{PID_SCOPE}|{HOST}|{alive}|ab12cd34|{now:.0f}", now)
    # another host's (or container's) process cannot be asked: its claim expires
    elsewhere = f"other-boot/pid:[1]|gpu-box-7|{dead}|ab12cd34|{now - 60:.0f}"
    assert claim_is_held(elsewhere, now) and not claim_is_held(elsewhere, now + CLAIM_EXPIRES_S)
    assert claim_is_held(f"{HOST}:{dead}:ab12cd34:{now:.0f}", now)  # a claim in the older form
    assert not claim_is_held("", now)


def test_an_interrupted_trial_is_claimed_before_new_ones(tmp_path, tracking_uri):
    spec = load_study(write_study(tmp_path, "order", grid={"lr": [0.02, 0.05, 0.1]}))
    session = Session(spec, resolve_storage(spec), tracking_uri)
    session.enqueue_missing()  # trials 0, 1, 2: never started
    interrupted = spec.trials[2]
    session._enqueue({}, {"trial_key": interrupted.key, "slot": interrupted.key, "cell_id": interrupted.cell_id,
                          "seed": interrupted.seed, "resume_from": str(tmp_path / "checkpoints")})

    claimed = session._claim()

    assert claimed.number == 3 and claimed.user_attrs["resume_from"]


def test_finished_mlflow_runs_are_never_trained_again_when_the_optuna_storage_is_lost(tmp_path, tracking_uri):
    spec = load_study(write_study(tmp_path, "lost-optuna", grid={"lr": [0.05, 0.1]}))
    first, _ = run(spec, tracking_uri)
    assert first.trained == 2
    values = {t.user_attrs["trial_key"]: t.value for t in optuna_trials(spec)}
    (spec.directory / "optuna.db").unlink()

    summary, lines = run(spec, tracking_uri)

    assert summary.trained == 0 and summary.done == 2
    assert lines[0] == ("2 trial(s) finished in MLflow but unknown to the Optuna storage: recorded done from their "
                        "runs, not trained again")
    assert {t.user_attrs["trial_key"]: t.value for t in optuna_trials(spec)} == values
    assert study_status(spec).counts()["done"] == 2
    assert len(mlflow_runs(tracking_uri, spec.experiment)) == 2


def test_finished_trials_without_their_mlflow_runs_are_one_line_with_the_fix(tmp_path, tracking_uri):
    spec = load_study(write_study(tmp_path, "lost-mlflow", grid={"lr": [0.05]}))
    run(spec, tracking_uri)
    elsewhere = default_tracking_uri(tmp_path / "fresh")  # the MLflow store deleted, or another one named

    summary, lines = run(spec, elsewhere)

    assert summary.trained == 0
    (note,) = [line for line in lines if "no finished run in the MLflow store" in line]
    assert note.startswith(f"1 finished trial(s) have no finished run in the MLflow store {elsewhere} "
                           f"(e.g. {spec.trials[0].key}), so no report shows them: point --tracking-uri at the store")
    assert note.endswith(f"or delete the Optuna storage {resolve_storage(spec)} to train them again")
    assert [t.state for t in optuna_trials(spec)] == [TrialState.COMPLETE]
