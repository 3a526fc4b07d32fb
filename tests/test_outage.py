"""Riding out a short server outage: a transient failure is tried again with doubling
delays for a bounded time (ABLATE_OUTAGE_S), anything else fails at once, and what is
logged has its password masked."""

import logging

import pytest
import requests
import sqlalchemy.exc
from mlflow.exceptions import MlflowException, RestException
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.trial import TrialState

from ablate.outage import SecondsSettingError, Patience, is_outage, outage_patience_s
from ablate.spec import load_study
from ablate.study import resolve_storage
from ablate.study.session import Session
from ablate.tracking import TrackingStore

from test_study import tracking_uri, write_study  # noqa: F401 (fixture)

SERVER = "the Optuna storage postgresql://ablate:hunter2@db:5432/optuna"


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def failing(times: int, error: Exception):
    """A function that raises `error` on its first `times` calls, then returns 'ok'."""
    calls = []

    def call(*args):
        calls.append(args)
        if len(calls) <= times:
            raise error
        return "ok"

    call.calls = calls
    return call


def patience(limit_s=120.0, transient=ConnectionError):
    time = FakeTime()
    return Patience(SERVER, lambda err: isinstance(err, transient), limit_s, sleep=time.sleep,
                    clock=lambda: time.now), time


def test_a_transient_failure_is_tried_again_after_doubling_delays(caplog):
    patient, time = patience()
    call = failing(4, ConnectionError("connection refused"))

    with caplog.at_level(logging.WARNING, logger="ablate"):
        assert patient.call(call, "x") == "ok"

    assert time.sleeps == [0.5, 1.0, 2.0, 4.0] and len(call.calls) == 5
    assert patient.recovered_at is not None
    assert [r.getMessage() for r in caplog.records] == [
        "the Optuna storage postgresql://ablate:***@db:5432/optuna did not answer (ConnectionError: connection "
        "refused); retrying for up to 120 s",
        "the Optuna storage postgresql://ablate:***@db:5432/optuna answers again after 4 failed attempts"]


def test_the_delay_stops_growing_at_fifteen_seconds():
    patient, time = patience()
    patient.call(failing(8, ConnectionError()))
    assert time.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]


def test_an_outage_longer_than_the_patience_raises_its_error():
    patient, time = patience(limit_s=10)
    refused = ConnectionError("refused")

    with pytest.raises(ConnectionError) as raised:
        patient.call(failing(100, refused))

    assert raised.value is refused
    assert time.sleeps == [0.5, 1.0, 2.0, 4.0]  # the next wait would end past 10 s
    assert patient.recovered_at is None


def test_any_other_error_is_raised_at_once():
    patient, time = patience()
    call = failing(1, ValueError("bad value"))
    with pytest.raises(ValueError):
        patient.call(call)
    assert time.sleeps == [] and len(call.calls) == 1


def test_a_run_created_just_before_the_connection_dropped_is_found_again_not_created_twice(tmp_path):
    store = TrackingStore(f"sqlite:///{tmp_path / 'mlflow.db'}")
    store.patience, _ = patience(transient=requests.exceptions.ConnectionError)
    experiment = store.create_experiment("dropped", None)
    create = store.client.create_run
    calls = []

    def created_but_the_answer_lost(*args, **kwargs):
        run = create(*args, **kwargs)
        calls.append(run.info.run_id)
        if len(calls) == 1:
            raise requests.exceptions.ConnectionError("connection reset by peer")
        return run

    store.client.create_run = created_but_the_answer_lost
    run_id = store.create_run(experiment, "trial seed 0", {"ablate.role": "trial"})

    assert calls == [run_id]  # the retry found the first try's run and created none
    assert [r.info.run_id for r in store.search(experiment, "")] == [run_id]


@pytest.mark.parametrize("value, seconds", [(None, 120.0), ("", 120.0), ("30", 30.0), ("0", 0.0), ("2.5", 2.5)])
def test_ablate_outage_s_sets_the_patience(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv("ABLATE_OUTAGE_S", raising=False)
    else:
        monkeypatch.setenv("ABLATE_OUTAGE_S", value)
    assert outage_patience_s() == seconds


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan"])
def test_a_bad_ablate_outage_s_is_a_user_error_naming_the_fix(monkeypatch, value):
    monkeypatch.setenv("ABLATE_OUTAGE_S", value)
    with pytest.raises(SecondsSettingError) as raised:
        outage_patience_s()
    assert str(raised.value) == (f"ABLATE_OUTAGE_S={value!r} is not a number of seconds; set it to e.g. "
                                 "ABLATE_OUTAGE_S=120, or unset it")


def raised_from(cause: Exception, error: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception:
            raise error  # noqa: B904 (the implicit chain is what MLflow leaves)
    except Exception as err:
        return err


def test_a_lost_database_connection_is_an_outage_and_a_finished_trial_is_not():
    dropped = sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionResetError("server closed the connection"))
    assert is_outage(raised_from(dropped, StorageInternalError("An exception is raised during the commit")))
    assert is_outage(sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")))
    assert not is_outage(UpdateFinishedTrialError("Trial#0 has already finished"))
    assert not is_outage(sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key")))


def test_an_unanswered_tracking_request_is_an_outage_and_a_refused_one_is_not():
    refused = requests.exceptions.ConnectionError("Max retries exceeded (Connection refused)")
    assert is_outage(raised_from(refused, MlflowException("API request to /runs/log-batch failed")))
    assert is_outage(raised_from(requests.exceptions.RetryError("too many 503 error responses"),
                                MlflowException("API request to /runs/log-batch failed")))
    assert not is_outage(RestException({"error_code": "RESOURCE_ALREADY_EXISTS", "message": "exists"}))


def test_a_finished_trial_whose_answer_was_lost_counts_as_finished_by_this_worker(tmp_path, tracking_uri):
    spec = load_study(write_study(tmp_path, "lost-answer", grid={"lr": [0.05]}))
    session = Session(spec, resolve_storage(spec), tracking_uri)
    session.enqueue_missing()
    claimed = session._claim()
    storage = session.store.storage
    write = storage.set_trial_state_values

    def written_but_the_answer_lost(trial_id, state, values=None):
        written = write(trial_id, state, values)
        if state.is_finished() and not dropped:
            dropped.append(trial_id)
            raise sqlalchemy.exc.OperationalError("COMMIT", {}, ConnectionResetError("connection reset"))
        return written

    dropped = []
    storage.set_trial_state_values = written_but_the_answer_lost

    assert session.end(claimed, TrialState.COMPLETE, {"best_val_acc": 0.5}, [0.5]) is True
    assert dropped == [claimed._trial_id]
    assert session.store.trial(claimed._trial_id).state == TrialState.COMPLETE
