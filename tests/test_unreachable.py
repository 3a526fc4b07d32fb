"""A database or tracking server that does not answer is one line and exit code 2,
before anything trains or is created, with its password masked."""

import socket
import time

import pytest

from ablate.cli import main

from test_study import write_study

PASSWORD = "hunter2"


def closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("server, command", [  # only training needs the tracking server
    ("storage", ("run", "--quiet")), ("storage", ("run", "--dry-run")), ("storage", ("status",)),
    ("tracking", ("run", "--quiet"))])
def test_an_unreachable_server_is_one_line_exit_2_and_nothing_is_created(tmp_path, capsys, monkeypatch, server,
                                                                         command):
    study = write_study(tmp_path, "unreachable", grid={"lr": [0.05]})
    port = closed_port()
    if server == "storage":  # given through the environment, as a Slurm script would
        monkeypatch.setenv("ABLATE_STORAGE", f"postgresql://ablate:{PASSWORD}@127.0.0.1:{port}/optuna")
        where, name = f"postgresql://ablate:***@127.0.0.1:{port}/optuna", "the Optuna storage"
        fix = "start the database server or fix --storage, ABLATE_STORAGE or 'storage:' in the study file"
    else:
        monkeypatch.setenv("ABLATE_TRACKING_URI", f"http://ablate:{PASSWORD}@127.0.0.1:{port}")
        where, name = f"http://ablate:***@127.0.0.1:{port}", "the MLflow tracking store"
        fix = "start it or fix --tracking-uri, ABLATE_TRACKING_URI or 'tracking: uri:' in the study file"
    started = time.monotonic()

    code = main([command[0], str(study), *command[1:]])

    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: cannot reach {name} {where}: ") and err.endswith(f"; {fix}\n")
    assert "Connection refused" in err and PASSWORD not in out + err
    assert time.monotonic() - started < 20
    assert not (tmp_path / "runs").exists()  # no storage, no MLflow database, no checkpoint


@pytest.mark.parametrize("command", ["report", "status"])
def test_report_and_status_against_an_unreachable_tracking_server_are_one_line_in_seconds(tmp_path, capsys, command):
    study = write_study(tmp_path, "unread", grid={"lr": [0.05]})
    with study.open("a") as document:  # status reads the tracking store for the analyses
        document.write("analysis:\n  probes: {train_examples: 100}\n")
    started = time.monotonic()

    code = main([command, str(study), "--tracking-uri", f"http://ablate:{PASSWORD}@127.0.0.1:{closed_port()}"])

    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "Connection refused" in err, err
    assert err.startswith("error: cannot reach the MLflow tracking store http://ablate:***@127.0.0.1:")
    assert PASSWORD not in out + err and "Traceback" not in out + err
    assert time.monotonic() - started < 15
    assert not (tmp_path / "runs").exists()


def test_a_tracking_server_that_never_answers_is_one_line_within_fifteen_seconds(tmp_path, capsys):
    study = write_study(tmp_path, "silent", grid={"lr": [0.05]})
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()

        code = main(["report", str(study), "--tracking-uri", f"http://127.0.0.1:{silent.getsockname()[1]}"])

    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "no answer within 5 s" in err, err
    assert time.monotonic() - started < 15
