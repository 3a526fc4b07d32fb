"""Passwords never leave in clear: masked by the URL's own grammar (SQLAlchemy's make_url),
whatever characters they hold and wherever the URL holds them (user info or ?password=),
in every message, parameter, tag, artifact and log file of a study run against a real
PostgreSQL server."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import psycopg
import pytest
import yaml
from sqlalchemy.engine import make_url

from ablate.cli import main
from ablate.errors import one_line
from ablate.urls import mask_url, storage_problem
from servers import POSTGRES_MISSING, PostgresServer, free_port, postgres_binaries
from test_study import TINY

# passwords SQLAlchemy accepts in a URL's user info as they are (an '@' must be %40)
HOSTILE_PASSWORDS = ["pa/ss", "p/a/s/s", "a:b:c", "q?x=1", "frag#ment", "sp/ce:mix?&#", "%40at", "=/=", "'quoted'",
                     "semi;colon", "brack]et[", "x" * 200, "//leading", "trailing//"]


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_the_mask_hides_every_password_sqlalchemy_reads_from_the_user_info(password):
    url = f"postgresql+psycopg://someone:{password}@db.example:5432/optuna?sslmode=require"
    assert make_url(url).password == urllib.parse.unquote(password)  # SQLAlchemy accepts it, with this password
    masked = mask_url(f"cannot reach {url}: refused")
    assert password not in masked and urllib.parse.unquote(password) not in masked
    assert masked == "cannot reach postgresql+psycopg://someone:***@db.example:5432/optuna?sslmode=require: refused"
    assert make_url(mask_url(url)).password == "***"


@pytest.mark.parametrize("key", ["password", "PASSWORD", "passwd", "token"])
def test_the_mask_hides_a_password_in_the_query(key):
    url = f"postgresql://someone@db.example/optuna?sslmode=require&{key}=se/cr:et&application_name=x"
    masked = mask_url(f"'{url}'")
    assert "se/cr:et" not in masked and f"{key}=***" in masked and "application_name=x" in masked


def test_urls_without_secrets_stay_as_they_are():
    text = "sqlite:////tmp/a:b/optuna.db http://host:5000/x?experiment=3 journal:///tmp/x.journal"
    assert mask_url(text) == text


def test_one_line_masks_an_exception_that_quotes_a_url():
    error = RuntimeError("connect to postgresql://u:p/w@h/db failed")
    assert one_line(error) == "RuntimeError: connect to postgresql://u:***@h/db failed"


# ------------------------------------------------------------------------ a real PostgreSQL
SLASHED = "pa/ss:w?rd#1"  # in the user info of the storage URL
QUERIED = "qu/ery-pw:2"  # given as ?password=


@pytest.fixture(scope="module")
def postgres():
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip(POSTGRES_MISSING)
    server = PostgresServer(binaries)
    try:
        server.start()
        with psycopg.connect(server.url("postgres"), autocommit=True) as connection:
            for name, password in (("slashed", SLASHED), ("queried", QUERIED)):
                connection.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
                connection.execute(f'CREATE DATABASE "{name}" OWNER {name}')
        yield server
    finally:
        server.remove()


def every_file_text(folder: Path) -> bytes:
    return b"\n".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("where", ["userinfo", "query"])
def test_a_study_on_postgresql_never_shows_or_stores_its_password(postgres, tmp_path, capsys, monkeypatch, where):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    password = SLASHED if where == "userinfo" else QUERIED
    storage = (f"postgresql+psycopg://slashed:{SLASHED}@127.0.0.1:{postgres.port}/slashed" if where == "userinfo"
               else f"postgresql+psycopg://queried@127.0.0.1:{postgres.port}/queried?password={QUERIED}")
    assert make_url(storage).password == SLASHED or make_url(storage).query["password"] == QUERIED
    assert storage_problem(storage) is None
    study = tmp_path / "secret.yaml"
    study.write_text(yaml.safe_dump({"name": "secret", "settings": TINY, "grid": {"lr": [0.05]}, "seeds": [0],
                                     "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}}))
    printed = []
    for argv in (("run", study, "--dry-run", "--storage", storage),
                 ("run", study, "--quiet", "--storage", storage),
                 ("status", study, "--storage", storage),
                 ("run", study, "--quiet", "--storage", storage.replace(str(postgres.port), str(free_port())))):
        printed.append(run_cli(capsys, *argv))
    (dry_code, _), (run_code, _), (status_code, _), (unreachable_code, unreachable) = printed
    assert (dry_code, run_code, status_code, unreachable_code) == (0, 0, 0, 2), printed
    assert "cannot reach the Optuna storage" in unreachable and "***" in unreachable
    for _, text in printed:
        assert password not in text, text
    # the MLflow store (params, tags such as ablate.optuna_storage), artifacts and logs
    stored = every_file_text(tmp_path)
    assert b"ablate.optuna_storage" in stored and password.encode() not in stored
    # and what Optuna keeps in the database itself
    with psycopg.connect(postgres.url("postgres").rsplit("/", 1)[0] + f"/{make_url(storage).database}") as db:
        rows = db.execute("SELECT value_json FROM trial_user_attributes UNION ALL "
                          "SELECT value_json FROM study_user_attributes").fetchall()
    assert rows and not any(password in row[0] for row in rows)
