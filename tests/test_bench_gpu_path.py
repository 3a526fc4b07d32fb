"""`make bench-gpu` runs on a GPU machine without optuna, mlflow or pydantic: its sections
import none of them and the fast-path epoch runs (here on the CPU, at a tiny scale)."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import importlib.abc, sys

    BLOCKED = ("optuna", "mlflow", "pydantic")

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}")

    sys.meta_path.insert(0, Absent())
    try:
        import pydantic  # noqa: F401
        raise SystemExit("the blocker let pydantic through")
    except ModuleNotFoundError:
        pass

    import torch
    from benchmarks import __main__, epoch_time, local_vs_bp, overlap  # noqa: F401

    cpu = torch.device("cpu")
    scale = epoch_time.Scale(images=64, batch=32, workers=0, timed_epochs=1)
    images, labels = epoch_time.random_cifar(scale.images)
    bundle = epoch_time.device_bundle(images, labels, scale, cpu)
    epoch = epoch_time.fast_epochs("resnet32", 2, "auglocal", bundle, scale, cpu, compiled=False)
    assert epoch.seconds > 0 and epoch.peak_bytes > 0, epoch
    loaded = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("ran without", ", ".join(BLOCKED))
""")


def test_the_gpu_benchmark_path_needs_neither_optuna_mlflow_nor_pydantic():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ran without optuna, mlflow, pydantic" in done.stdout
