"""Which torch device a setting names on this machine: `auto`, `cpu`, `cuda`, `cuda:N`,
`mps`; a device this machine lacks is a one-line user error before anything is built."""

from __future__ import annotations

import torch

from .errors import UserInputError

DEVICE_TYPES = ("cpu", "cuda", "mps")


def device_syntax_problem(name: str) -> str | None:
    """Why `name` names no device ablate trains on, wherever it runs (one line), or None."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES or (device.index is not None and device.type != "cuda"):
        return f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps"
    return None


def device_problem(name: str) -> str | None:
    """Why device `name` cannot be used on this machine (one line, with the fix), or None."""
    problem = device_syntax_problem(name)
    if problem is not None or name == "auto":
        return problem
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return f"device {name!r}: CUDA is not available on this machine; use device cpu or auto"
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            return f"device {name!r}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}"
        return None
    if device.type == "mps" and not torch.backends.mps.is_available():
        return f"device {name!r}: MPS is not available on this machine; use device cpu or auto"
    return None


def select_device(name: str) -> torch.device:
    """The torch device `name` names (auto: CUDA when there is one); UserInputError when
    this machine has no such device."""
    problem = device_problem(name)
    if problem is not None:
        raise UserInputError(problem)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
