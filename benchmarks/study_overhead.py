"""(i) What a study costs beyond its training: `ablate run` on a copy of the quickstart study
(studies/quickstart.yaml, its own storage and tracking in a fresh folder), one process, timed
from outside (interpreter start to exit), with the study's parts timed from inside:

- training: every `Trainer.fit`, less its callbacks;
- trial set-up: every `Trainer(...)` (data, network, optimiser);
- callbacks: the Optuna and MLflow callbacks inside `fit` (per-epoch reports and metrics);
- analyses: every `analyse_run` (probes, CKA to the bp trial of the seed);
- the rest: interpreter start, imports, storages, MLflow runs and artifacts, scheduling.

Overhead is everything but training, as a share of wall time; start-up per trial is trial
set-up plus the rest, over the number of trials.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parent.parent / "studies" / "quickstart.yaml"
OVERHEAD_SHARE = 0.15  # of wall time, at most
START_UP_PER_TRIAL_S = 2.0  # at most


def _child(out_path: str, study: str) -> None:
    """In the measured process: time the parts, run the study, write the times."""
    import ablate.study.analyses as analyses
    from ablate.cli.main import main
    from ablate.engine import Trainer

    spent: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)

    def timed(part: str, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - start
                counts[part] += 1
        return wrapper

    init, fit = Trainer.__init__, Trainer.fit

    def fit_with_timed_callbacks(self):
        for callback in self.callbacks:
            for hook in ("on_train_start", "on_epoch_end", "on_train_end"):
                setattr(callback, hook, timed("callbacks", getattr(callback, hook)))
        before = spent["callbacks"]
        start = time.perf_counter()
        try:
            return fit(self)
        finally:
            spent["training"] += time.perf_counter() - start - (spent["callbacks"] - before)
            counts["training"] += 1

    Trainer.__init__ = timed("trial set-up", init)
    Trainer.fit = fit_with_timed_callbacks
    analyses.analyse_run = timed("analyses", analyses.analyse_run)
    code = main(["run", study, "--quiet"])
    Path(out_path).write_text(json.dumps({"spent": spent, "counts": counts}))
    sys.exit(code)


def measure() -> dict:
    folder = Path(tempfile.mkdtemp(prefix="ablate-study-overhead-"))
    try:
        study = folder / QUICKSTART.name
        shutil.copy(QUICKSTART, study)
        out = folder / "times.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(QUICKSTART.parent.parent)] + sys.path)}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "benchmarks.study_overhead", str(out), str(study)], check=True, env=env,
                       cwd=folder)
        wall = time.perf_counter() - start
        times = json.loads(out.read_text())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    spent, trials = times["spent"], times["counts"]["training"]
    parts = {part: spent.get(part, 0.0) for part in ("training", "trial set-up", "callbacks", "analyses")}
    parts["the rest"] = wall - sum(parts.values())
    return {"wall_s": wall, "trials": trials, "parts_s": parts,
            "overhead_share": (wall - parts["training"]) / wall,
            "start_up_per_trial_s": (parts["trial set-up"] + parts["the rest"]) / max(trials, 1)}


def table() -> tuple[str, dict]:
    figures = measure()
    trials, wall = figures["trials"], figures["wall_s"]
    lines = [f"`ablate run` on a fresh copy of the quickstart ({trials} trials, one process): "
             f"wall {wall:.1f} s", "",
             "| part | s | share of wall | s per trial |", "|---|---|---|---|"]
    for part, seconds in figures["parts_s"].items():
        lines.append(f"| {part} | {seconds:.1f} | {100 * seconds / wall:.1f}% | {seconds / max(trials, 1):.2f} |")
    lines += ["", f"Overhead (all but training): {100 * figures['overhead_share']:.1f}% of wall time; "
                  f"start-up per trial (set-up and the rest): {figures['start_up_per_trial_s']:.2f} s"]
    return "\n".join(lines), figures


def targets(figures: dict) -> list[tuple[str, bool]]:
    share, start_up = figures["overhead_share"], figures["start_up_per_trial_s"]
    return [(f"quickstart study overhead {100 * share:.1f}% <= {100 * OVERHEAD_SHARE:.0f}% of wall time",
             share <= OVERHEAD_SHARE),
            (f"quickstart start-up per trial {start_up:.2f} s <= {START_UP_PER_TRIAL_S:g} s",
             start_up <= START_UP_PER_TRIAL_S)]


if __name__ == "__main__":
    _child(*sys.argv[1:3])
