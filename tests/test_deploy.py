"""What ships for scaling out, read as files (no Docker or Slurm here): the image runs
`ablate` on a CUDA PyTorch base and installs like the Makefile; the compose file keeps
the servers off the network and points the workers at them; the Slurm script starts
one worker per task and says what is missing."""

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SLURM = REPO / "studies" / "slurm" / "run_array.sh"


def instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.split(None, 1)[:1] == [name]]


def test_the_image_is_a_cuda_pytorch_runtime_whose_entrypoint_is_ablate():
    base = dict(arg.split("=", 1) for arg in instructions("ARG"))["BASE"]
    assert re.fullmatch(r"pytorch/pytorch:2\.\d+\.\d+-cuda12\.\d+-cudnn9-runtime", base)
    assert instructions("FROM") == ["${BASE}"]
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["ablate"]


def test_the_image_installs_the_package_as_the_makefile_does():
    makefile = (REPO / "Makefile").read_text()
    assert "-m pip install -qq -e '.[dev]'" in makefile
    assert instructions("RUN") == ["pip install --no-cache-dir -e ."]
    copied = [line.split()[0] for line in instructions("COPY")]
    assert {"pyproject.toml", "ablate", "studies"} <= set(copied)


def test_the_servers_are_reachable_only_inside_the_compose_network_or_from_this_machine():
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "mlflow", "worker"}
    assert "ports" not in services["postgres"] and "ports" not in services["worker"]
    assert services["mlflow"]["ports"] == ["127.0.0.1:5000:5000"]
    assert not any("network_mode" in service for service in services.values())


def test_the_tracking_server_keeps_runs_in_postgres_and_serves_the_artifacts():
    mlflow = COMPOSE["services"]["mlflow"]
    options = dict(option.split("=", 1) for option in mlflow["command"][1:])
    assert mlflow["entrypoint"] == ["mlflow"] and mlflow["command"][0] == "server"
    assert options["--backend-store-uri"] == (
        "postgresql+psycopg://ablate:${POSTGRES_PASSWORD:-ablate-local}@postgres:5432/mlflow")
    assert options["--artifacts-destination"] == "/mlartifacts"
    assert "mlflow:5000" in options["--allowed-hosts"].split(",")  # the workers' Host header
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "CREATE DATABASE mlflow;" in COMPOSE["configs"]["mlflow-database"]["content"]


def test_the_workers_share_the_servers_one_gpu_each():
    worker, mlflow = COMPOSE["services"]["worker"], COMPOSE["services"]["mlflow"]
    assert worker["image"] == mlflow["image"] and mlflow["build"] == "."
    assert worker["command"][0] == "run"
    assert worker["environment"] == {
        "ABLATE_STORAGE": "postgresql+psycopg://ablate:${POSTGRES_PASSWORD:-ablate-local}@postgres:5432/optuna",
        "ABLATE_TRACKING_URI": "http://mlflow:5000"}
    assert worker["deploy"]["replicas"] == "${WORKERS:-2}"
    assert worker["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert worker["depends_on"]["mlflow"]["condition"] == "service_healthy"


def run_slurm_task(tmp_path: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """The array script with a stand-in `ablate` that prints what it was given."""
    (tmp_path / "ablate").write_text('#!/bin/sh\necho "ablate $* storage=$ABLATE_STORAGE"\n')
    (tmp_path / "ablate").chmod(0o755)
    path = f"{tmp_path}:{os.environ['PATH']}"
    return subprocess.run(["bash", str(SLURM), *args], env={"PATH": path, **env}, capture_output=True, text=True)


def test_a_slurm_task_is_one_ablate_run_worker_on_the_shared_servers(tmp_path):
    servers = {"ABLATE_STORAGE": "postgresql+psycopg://ablate:pw@db/optuna", "ABLATE_TRACKING_URI": "http://db:5000"}

    done = run_slurm_task(tmp_path, servers, "studies/depth_decay.yaml")

    assert done.returncode == 0, done.stderr
    assert done.stdout == "ablate run studies/depth_decay.yaml --quiet storage=postgresql+psycopg://ablate:pw@db/optuna\n"


def test_a_slurm_task_without_its_servers_says_what_to_export(tmp_path):
    done = run_slurm_task(tmp_path, {"ABLATE_TRACKING_URI": "http://db:5000"}, "studies/depth_decay.yaml")
    assert done.returncode != 0 and done.stdout == ""
    assert "export ABLATE_STORAGE=postgresql+psycopg://USER:PASSWORD@HOST/DATABASE before sbatch" in done.stderr

    done = run_slurm_task(tmp_path, {})
    assert done.returncode != 0 and "usage: sbatch --array=0-N studies/slurm/run_array.sh STUDY.yaml" in done.stderr
