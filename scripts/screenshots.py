"""`make screenshots`: what a researcher sees of a study, in a real browser.

Trains a copy of studies/quickstart.yaml at a tiny budget in a scratch folder, reports
it, starts `mlflow ui` and `optuna-dashboard` on its stores, and takes headless Chromium
(Debian's `chromium`) screenshots of the cell runs sorted by their mean, the trials
grouped by cell, the trials' per-epoch charts, the study run, and optuna-dashboard's
history and parallel-coordinate views. PNGs go to docs/screenshots/.

    python scripts/screenshots.py [--work build/screenshots] [--out docs/screenshots] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# MLflow 3 opens its assistant panel over a third of the page for a browser on localhost
# (127.0.0.1); on another loopback address it does not, and the page shows the runs.
HOST = "127.0.0.2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextmanager
def server(command: list[str], url: str, log: Path):
    """A server process, up once `url` answers; stopped (by its own pid) afterwards."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"{command[0]} did not start; see {log}")
                    time.sleep(0.5)
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise SystemExit("headless Chromium is needed: apt-get install chromium")
    return found


def shoot(url: str, png: Path, size: str = "1600,1000", wait_ms: int = 12000) -> None:
    """One screenshot of `url` once its scripts had `wait_ms` of virtual time to render."""
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--run-all-compositor-stages-before-draw",  # else charts are still spinners
                    f"--window-size={size}", f"--virtual-time-budget={wait_ms}", f"--screenshot={png}", url],
                   check=True, capture_output=True, timeout=180)
    print(f"  {png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}")


def ablate(*args: str, cwd: Path) -> None:
    """The ablate of this checkout, whatever the environment has installed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-c", "from ablate.cli import main; main()", *args], cwd=cwd, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "screenshots")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--again", action="store_true", help="keep the trained study in --work: screenshots only")
    options = parser.parse_args()
    work, out = options.work.resolve(), options.out.resolve()
    if not options.again:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "studies" / "quickstart.yaml", work / "quickstart.yaml")
    budget = ("--set", f"epochs={options.epochs}")
    ablate("run", "quickstart.yaml", "--quiet", *budget, cwd=work)  # with --again: trains nothing
    ablate("report", "quickstart.yaml", *budget, cwd=work)

    from mlflow.tracking import MlflowClient

    store = work / "runs" / "quickstart"
    tracking = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("quickstart").experiment_id
    parent = client.search_runs([experiment], "tags.`ablate.role` = 'parent'")[0]

    port = free_port()
    ui = f"http://{HOST}:{port}"
    with server([str(BIN / "mlflow"), "ui", "--backend-store-uri", tracking, "--host", HOST, "--port", str(port),
                 "--workers", "1", "--allowed-hosts", f"{HOST}:{port}", "--cors-allowed-origins", ui],
                ui, work / "mlflow-ui.log"):
        # workflowType: the model-training side bar (MLflow remembers the GenAI one otherwise)
        runs = f"{ui}/#/experiments/{experiment}/runs?workflowType=machine_learning&viewStateShareKey="
        shoot(runs + "ablate-cells", out / "mlflow_cells_sorted_by_mean.png", size="1800,700")
        shoot(runs + "ablate-trials-by-cell", out / "mlflow_trials_grouped_by_cell.png", size="1800,800")
        shoot(runs + "ablate-trial-charts&compareRunsMode=CHART", out / "mlflow_trial_charts.png", size="1800,1000",
              wait_ms=25000)
        shoot(f"{ui}/#/experiments/{experiment}/runs/{parent.info.run_id}?workflowType=machine_learning",
              out / "mlflow_study_run.png", size="1800,1300")

    port = free_port()
    dashboard = f"http://{HOST}:{port}"
    with server([str(BIN / "optuna-dashboard"), f"sqlite:///{store / 'optuna.db'}", "--host", HOST,
                 "--port", str(port)], dashboard, work / "optuna-dashboard.log"):
        shoot(f"{dashboard}/dashboard/studies/1", out / "optuna_history.png", size="1600,1400")
        shoot(f"{dashboard}/dashboard/studies/1/analytics", out / "optuna_analytics.png", size="1600,1400")


if __name__ == "__main__":
    main()
