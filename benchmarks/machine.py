"""What a benchmark ran on, printed above every table."""

from __future__ import annotations

import os
import platform
from datetime import date

import torch


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine(device: torch.device) -> str:
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads")
    return (f"{date.today().isoformat()} · {device.type}: {where} · torch {torch.__version__} · "
            f"python {platform.python_version()}")


def load_average() -> str:
    """The machine's load (other processes slow every figure; the ratios less so)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
