"""A full disk or a read-only folder is no server outage: it is not retried, the study
stops with one line naming the file, the trial is recorded failed and resumable, and no
run is left RUNNING; once the disk is fixed the next run resumes the trial."""

import errno
import logging
import sqlite3

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

import ablate.engine.trainer
import ablate.tracking.store
from ablate.cli import main
from ablate.outage import is_outage, storage_fault
from ablate.spec import load_study
from ablate.study import study_status

from test_study import mlflow_runs, optuna_trials, tracking_uri, write_study  # noqa: F401 (fixture)


def sqlite_error(text: str) -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("UPDATE trial_user_attributes", {}, sqlite3.OperationalError(text))


@pytest.mark.parametrize("err, fault", [
    (OSError(errno.ENOSPC, "No space left on device", "/runs/s/checkpoint.pt"),
     "no space left on device writing /runs/s/checkpoint.pt"),
    (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
    (PermissionError(errno.EACCES, "Permission denied", "/runs/s/optuna.db"),
     "permission denied writing /runs/s/optuna.db"),
    (sqlite_error("database or disk is full"), "no space left on device"),
    (sqlite_error("attempt to write a readonly database"), "read-only database"),
])
def test_a_full_disk_or_a_read_only_file_is_a_fault_and_never_an_outage(err, fault):
    assert storage_fault(err) == fault and not is_outage(err)


def test_a_lost_connection_is_still_an_outage_and_no_fault():
    for err in (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), sqlite_error("database is locked")):
        assert is_outage(err) and storage_fault(err) is None


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_checkpoint_that_cannot_be_written_stops_the_study_in_one_line_and_the_trial_resumes(
        tmp_path, capsys, monkeypatch, tracking_uri, code):
    study = write_study(tmp_path, f"disk-{code}", grid={"lr": [0.05, 0.1]}, epochs=3)
    spec = load_study(study)
    first = spec.trials[0]
    save = ablate.engine.trainer.save_checkpoint

    def disk_full_after_one_epoch(path, state):
        if state["epoch"] >= 2:
            raise OSError(code, "injected", str(path))
        save(path, state)

    monkeypatch.setattr(ablate.engine.trainer, "save_checkpoint", disk_full_after_one_epoch)

    status = main(["run", str(study), "--quiet", "--tracking-uri", tracking_uri])

    out, err = capsys.readouterr()
    checkpoint = spec.directory / "checkpoints" / first.key / "checkpoint.pt"
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in out + err, err
    assert err.startswith(f"error: {storage_fault(OSError(code, '', str(checkpoint)))}; trial ")
    assert err.endswith("is kept to resume from its last checkpoint: free space (or make the folder writable) "
                        "and run `ablate run` again\n")
    attempt, second = optuna_trials(spec)
    assert second.state == TrialState.WAITING  # the study stopped: the second trial was never claimed
    assert attempt.state == TrialState.FAIL and attempt.user_attrs["interrupted"] == "storage"
    assert checkpoint.exists()
    row = study_status(spec).trials[0]
    assert row.state == "pending" and "resumes from its checkpoint" in row.detail
    statuses = {run.info.status for role in ("trial", "parent") for run in mlflow_runs(tracking_uri, spec.experiment,
                                                                                         role)}
    assert "RUNNING" not in statuses

    monkeypatch.setattr(ablate.engine.trainer, "save_checkpoint", save)  # space freed
    status = main(["run", str(study), "--quiet", "--tracking-uri", tracking_uri])

    assert status == 0, capsys.readouterr()
    resumed = [t for t in optuna_trials(spec) if t.user_attrs["trial_key"] == first.key][-1]
    assert resumed.state == TrialState.COMPLETE and resumed.user_attrs["resumed_from_epoch"] == 1


def test_a_full_optuna_database_is_not_retried_as_an_outage(tmp_path, capsys, monkeypatch, tracking_uri, caplog):
    study = write_study(tmp_path, "db-full", grid={"lr": [0.05]}, epochs=2)
    spec = load_study(study)
    set_attr = optuna.storages.RDBStorage.set_trial_user_attr

    def full_at_the_first_epoch_end(self, trial_id, key, value):
        if key == "epoch" and value == 1:
            raise sqlite_error("database or disk is full")
        set_attr(self, trial_id, key, value)

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_user_attr", full_at_the_first_epoch_end)
    monkeypatch.setenv("ABLATE_OUTAGE_S", "600")
    with caplog.at_level(logging.WARNING, logger="ablate"):
        status = main(["run", str(study), "--quiet", "--tracking-uri", tracking_uri])

    _, err = capsys.readouterr()
    assert status == 2 and err.startswith("error: no space left on device; trial ") and err.count("\n") == 1, err
    assert not [r for r in caplog.records if "did not answer" in r.getMessage()]  # never waited for
    (attempt,) = optuna_trials(spec)
    assert attempt.state == TrialState.FAIL and attempt.user_attrs["interrupted"] == "storage"
    assert {run.info.status for run in mlflow_runs(tracking_uri, spec.experiment)} == {"FAILED"}


def test_a_read_only_study_folder_met_anywhere_is_one_line(tmp_path, capsys, monkeypatch):
    study = write_study(tmp_path, "read-only", grid={"lr": [0.05]})

    def read_only(uri):  # as root chmod cannot make the folder read-only: the kernel's answer is injected
        raise sqlalchemy.exc.OperationalError("CREATE TABLE experiments", {},
                                              sqlite3.OperationalError("attempt to write a readonly database"))

    monkeypatch.setattr(ablate.tracking.store, "_new_client", read_only)

    status = main(["run", str(study), "--quiet"])

    out, err = capsys.readouterr()
    assert status == 2 and "Traceback" not in out + err
    assert err == ("error: read-only database; free space or make the folder writable, then run the command "
                   "again\n")
