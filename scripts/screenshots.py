"""`make screenshots`: what a researcher sees of a study, in a real browser.

Trains a copy of studies/quickstart.yaml at a tiny budget in a scratch folder, reports
it, starts `mlflow ui` and `optuna-dashboard` on its stores, and takes headless Chromium
(Debian's `chromium`) screenshots of the cell runs sorted by their mean, the trials
grouped by cell, one trial's charts, the study run's report, and optuna-dashboard's
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
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
    options = parser.parse_args()
    work, out = options.work.resolve(), options.out.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "studies" / "quickstart.yaml", work / "quickstart.yaml")
    budget = ("--set", f"epochs={options.epochs}")
    ablate("run", "quickstart.yaml", "--quiet", *budget, cwd=work)
    ablate("report", "quickstart.yaml", *budget, cwd=work)

    from mlflow.tracking import MlflowClient

    store = work / "runs" / "quickstart"
    tracking = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("quickstart").experiment_id
    trial = client.search_runs([experiment], "tags.`ablate.role` = 'trial' and tags.`ablate.cell` = 'auglocal d=3'",
                               order_by=["metrics.`final_test_acc_pct` DESC"], max_results=1)[0]
    parent = client.search_runs([experiment], "tags.`ablate.role` = 'parent'")[0]

    port = free_port()
    ui = f"http://127.0.0.1:{port}"
    with server([str(BIN / "mlflow"), "ui", "--backend-store-uri", tracking, "--host", "127.0.0.1",
                 "--port", str(port), "--workers", "1"], ui, work / "mlflow-ui.log"):
        runs = f"{ui}/#/experiments/{experiment}/runs?viewStateShareKey="
        shoot(runs + "ablate-cells", out / "mlflow_cells_sorted_by_mean.png")
        shoot(runs + "ablate-trials-by-cell", out / "mlflow_trials_grouped_by_cell.png")
        shoot(f"{ui}/#/experiments/{experiment}/runs/{trial.info.run_id}/model-metrics",
              out / "mlflow_trial_charts.png", size="1600,1400")
        shoot(f"{ui}/#/experiments/{experiment}/runs/{parent.info.run_id}", out / "mlflow_study_run.png")

    port = free_port()
    dashboard = f"http://127.0.0.1:{port}"
    with server([str(BIN / "optuna-dashboard"), f"sqlite:///{store / 'optuna.db'}", "--host", "127.0.0.1",
                 "--port", str(port)], dashboard, work / "optuna-dashboard.log"):
        shoot(f"{dashboard}/dashboard/studies/1", out / "optuna_history.png", size="1600,1400")
        shoot(f"{dashboard}/dashboard/studies/1/analytics", out / "optuna_analytics.png", size="1600,1400")


if __name__ == "__main__":
    main()
