"""Signals, sent to a real `ablate run` process: SIGTERM stops as the first Ctrl-C does
(at the end of the epoch, or at once after the grace time), exit code 143; a second
Ctrl-C stops at once even while a saved-tensor finaliser runs, exit code 130; every way
leaves the trial resumable and no MLflow run RUNNING."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from ablate.engine import memory
from ablate.interrupts import interrupts_survive_finalisers
from ablate.spec import load_study
from ablate.study import study_status

from test_study import mlflow_runs, optuna_trials, tracking_uri, write_study  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[1]
# `ablate ARGS`, where with SLOW_RELEASE_S every release of a saved tensor (the
# finaliser `_Held.__del__`) sleeps, so that a step takes long and a signal lands in it
ABLATE = """
import os, sys, time
import torch
torch.set_num_threads(1)
from ablate.engine import memory
from ablate.interrupts import interrupts_survive_finalisers
slow, mark = float(os.environ.get("SLOW_RELEASE_S", "0")), os.environ["STEP_MARK"]
release = memory.SavedTensorMeter._release
def slow_release(self, key):
    if not os.path.exists(mark):
        open(mark, "w").close()
    time.sleep(slow)
    release(self, key)
memory.SavedTensorMeter._release = slow_release
from ablate.cli import main
sys.exit(main(sys.argv[1:]))
"""


def start(tmp_path, study, tracking_uri, **env):
    log = (tmp_path / "out.txt").open("w")
    return subprocess.Popen([sys.executable, "-c", ABLATE, "run", str(study), "--quiet", "--tracking-uri",
                             tracking_uri], cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "STEP_MARK": str(tmp_path / "stepping"), **env})


def wait_for(path: Path, process, seconds=90):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, (path.parent / "out.txt").read_text()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def assert_interrupted_and_resumable(spec, tracking_uri, reason):
    (attempt,) = optuna_trials(spec)
    assert attempt.state == TrialState.FAIL and attempt.user_attrs["interrupted"] == "user"
    assert attempt.user_attrs["reason"] == reason
    row = study_status(spec).trials[0]
    assert row.state == "pending" and "resumes from its checkpoint" in row.detail
    trial_runs = mlflow_runs(tracking_uri, spec.experiment)
    assert [r.info.status for r in trial_runs] == ["KILLED"] and trial_runs[0].data.tags["ablate.reason"] == reason
    assert [r.info.status for r in mlflow_runs(tracking_uri, spec.experiment, "parent")] == ["KILLED"]


def test_sigterm_stops_at_the_end_of_the_epoch_with_exit_code_143(tmp_path, tracking_uri):
    study = write_study(tmp_path, "term", grid={"lr": [0.05]}, epochs=50)
    spec = load_study(study)
    checkpoint = spec.directory / "checkpoints" / spec.trials[0].key / "checkpoint.pt"
    process = start(tmp_path, study, tracking_uri)
    wait_for(checkpoint, process)

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=60) == 143
    out = (tmp_path / "out.txt").read_text()
    assert "SIGTERM: stopping at the end of the current epoch" in out and out.endswith("interrupted by SIGTERM\n")
    assert "Traceback" not in out
    assert_interrupted_and_resumable(spec, tracking_uri, "interrupted by SIGTERM")
    assert 1 <= optuna_trials(spec)[0].user_attrs["epoch"] < 50 and checkpoint.exists()


def test_sigterm_stops_at_once_when_the_epoch_outlasts_the_grace_time(tmp_path, tracking_uri):
    study = write_study(tmp_path, "grace", grid={"lr": [0.05]}, epochs=2)
    spec = load_study(study)
    process = start(tmp_path, study, tracking_uri, SLOW_RELEASE_S="0.05", ABLATE_STOP_GRACE_S="1")
    wait_for(tmp_path / "stepping", process)  # inside the first epoch, which would take minutes

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=60) == 143
    out = (tmp_path / "out.txt").read_text()
    assert "at once in 1 s" in out and "Traceback" not in out, out
    assert_interrupted_and_resumable(spec, tracking_uri, "interrupted by SIGTERM")
    assert optuna_trials(spec)[0].user_attrs["epoch"] == 0  # stopped inside the epoch


def test_a_second_ctrl_c_stops_at_once_even_inside_a_saved_tensor_finaliser(tmp_path, tracking_uri):
    study = write_study(tmp_path, "twice", grid={"lr": [0.05]}, epochs=2)
    spec = load_study(study)
    # no grace time to end it: only the second Ctrl-C can
    process = start(tmp_path, study, tracking_uri, SLOW_RELEASE_S="0.05", ABLATE_STOP_GRACE_S="600")
    wait_for(tmp_path / "stepping", process)

    process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    while "Ctrl-C: stopping" not in (tmp_path / "out.txt").read_text():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)

    assert process.wait(timeout=60) == 130
    out = (tmp_path / "out.txt").read_text()
    assert out.endswith("interrupted by SIGINT\n") and "Traceback" not in out, out
    assert_interrupted_and_resumable(spec, tracking_uri, "interrupted by the user")


def test_a_ctrl_c_that_lands_in_a_finaliser_is_delivered_again_outside_it():
    meter = memory.SavedTensorMeter()

    def interrupted(key):
        raise KeyboardInterrupt

    meter._release = interrupted
    held = memory._Held(meter, 0, None)
    with interrupts_survive_finalisers(), pytest.raises(KeyboardInterrupt):
        del held  # Python would only print what the finaliser raised ("Exception ignored in ...")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.001)
