"""Real servers for the scale-out tests, each a child of the test process on a free port
of 127.0.0.1: a PostgreSQL server in a temporary directory and an `mlflow server` on it.
PostgreSQL refuses to run as root, so under root it runs as the unprivileged user that
Debian's package creates ('postgres'), or 'nobody'."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg

POSTGRES_MISSING = "PostgreSQL server binaries (initdb, postgres) not found: apt-get install postgresql"
USER, PASSWORD = "ablate", "s3cret-pw"
START_TIMEOUT_S = 120
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true"}  # tests send nothing beyond this machine


def postgres_binaries() -> Path | None:
    """The folder with initdb and postgres: on PATH, else Debian's /usr/lib/postgresql/N/bin
    (the newest N), which the package does not put on PATH."""
    on_path = shutil.which("initdb")
    folders = [Path(on_path).resolve().parent] if on_path else []
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    folders += sorted(debian, key=lambda p: int(p.parent.name), reverse=True)
    return next((f for f in folders if (f / "initdb").is_file() and (f / "postgres").is_file()), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _unprivileged() -> dict:
    """subprocess arguments that run a command as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    raise RuntimeError("running as root, and neither user 'postgres' nor 'nobody' exists to run PostgreSQL as")


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


class PostgresServer:
    """A fresh database cluster (superuser USER, password PASSWORD) in a temporary
    directory, durable writes off for speed; `start` and `stop` may repeat (same port)."""

    def __init__(self, binaries: Path):
        self.binaries = binaries
        self.as_user = _unprivileged()
        self.root = Path(tempfile.mkdtemp(prefix="ablate-postgres-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        password_file = self.root / "password"
        password_file.write_text(PASSWORD + "\n")
        if self.as_user:
            for path in (self.root, password_file):
                os.chown(path, self.as_user["user"], self.as_user["group"])
        subprocess.run([str(binaries / "initdb"), "-D", str(self.root / "data"), "-U", USER,
                        f"--pwfile={password_file}", "--auth=scram-sha-256", "--no-locale", "-E", "UTF8",
                        "--no-sync"], cwd=self.root, check=True, capture_output=True, **self.as_user)

    def url(self, database: str, scheme: str = "postgresql") -> str:
        return f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        with open(self.root / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [str(self.binaries / "postgres"), "-D", str(self.root / "data"), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                cwd=self.root, stdout=log, stderr=subprocess.STDOUT, **self.as_user)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start:\n{_tail(self.root / 'server.log')}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as when a database server goes away."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')

    def query(self, database: str, sql: str) -> list[tuple]:
        with psycopg.connect(self.url(database)) as connection:
            return connection.execute(sql).fetchall()

    def tables(self, database: str) -> list[str]:
        rows = self.query(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return sorted(row[0] for row in rows)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class MlflowServer:
    """`mlflow server` on a database, serving artifacts from `artifacts` (no direct
    access from clients: they upload and download through the server)."""

    def __init__(self, backend_uri: str, artifacts: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.artifacts = artifacts
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
                 "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", "1"],
                env={**os.environ, **QUIET}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own group: stop takes all
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mlflow server did not start:\n{_tail(log)}")
            time.sleep(0.25)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:  # after a database outage its job runner may sit in a reconnect loop: then SIGKILL
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass
class Servers:
    postgres: PostgresServer
    mlflow: MlflowServer
    storage: str  # the Optuna storage URL (password included)
    tracking_uri: str


@contextlib.contextmanager
def running_servers(binaries: Path, folder: Path):
    """PostgreSQL with databases 'optuna' (the study storage) and 'mlflow' (the tracking
    server's), and an MLflow server on the latter; both stopped on the way out."""
    postgres = PostgresServer(binaries)
    mlflow = None
    try:
        postgres.start()
        for database in ("optuna", "mlflow"):
            postgres.create_database(database)
        # the scheme that docker-compose.yml and the README use
        backend = postgres.url("mlflow", scheme="postgresql+psycopg")
        mlflow = MlflowServer(backend, folder / "artifacts", folder / "mlflow-server.log")
        yield Servers(postgres, mlflow, postgres.url("optuna"), mlflow.url)
    finally:
        if mlflow is not None:
            mlflow.stop()
        postgres.remove()
