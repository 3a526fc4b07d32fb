"""Where a run's numbers came from: the source commit and the versions of what ran it."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path

import torch

VERSIONED_PACKAGES = ("ablate", "torch", "torchvision", "optuna", "mlflow")


@functools.cache
def git_commit() -> str:
    """The commit of the ablate source tree ('-dirty' when it has uncommitted changes),
    or 'unknown' outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


@functools.cache
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["torch"] = torch.__version__  # the build tag too, e.g. 2.5.1+cu124
    versions["cuda"] = torch.version.cuda or "none"
    return versions


def provenance_tags() -> dict[str, str]:
    commit = git_commit()
    tags = {"ablate.git_commit": commit, **{f"ablate.version.{k}": v for k, v in package_versions().items()}}
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit.removesuffix("-dirty")  # shown by the MLflow UI
    return tags


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
