"""A study's `analysis:` block, run on each finished trial as soon as its inputs exist.

After every trial a worker finishes, and once more when `ablate run` ends (also when it
had nothing left to train), every finished trial run of the study whose analysis is not
done is analysed if its CKA reference has finished too; otherwise its run is tagged
ablate.analysis = "waiting for reference <key>", so order never makes an analysis go
missing, and a study finished before its `analysis:` block was written gets its
analyses on the next `ablate run`. A worker claims a run's analysis by tagging it and
reading the tag back, so two processes rarely analyse the same run; if they do, the
second only repeats the same numbers. A claim names its process as a trial's worker
does (ablate.study.liveness): one by a process of this pid scope that is dead is taken
over at once; one from another host expires after CLAIM_EXPIRES_S. A failed analysis is tagged with its reason and
tried again by the next `ablate run`; it never fails its trial.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable

from .. import tracking
from ..analysis.runs import analyse_run
from ..spec import StudySpec
from ..errors import one_line
from .liveness import HOST, PID_SCOPE, pid_alive

STATE_TAG, CLAIM_TAG = tracking.names.ANALYSIS, tracking.names.ANALYSIS_CLAIM
CLAIM_EXPIRES_S = 3600.0  # a claim this old belongs to a process that died mid-analysis
_READ_BACK_S = 0.3  # between writing a claim and checking that it is still ours


def analyse_ready(spec: StudySpec, tracking_uri: str, notify: Callable[[str], None],
                  tried: set[str] | None = None) -> int:
    """Analyse every finished trial of `spec` whose analysis can run now; returns how
    many were analysed. `tried` collects the run ids attempted, so that one process
    does not retry a failing analysis after every trial."""
    if spec.analysis is None:
        return 0
    tried = set() if tried is None else tried
    runs = tracking.latest_finished(tracking_uri, spec.experiment, spec.name)
    done = 0
    for key, run in runs.items():
        if run.tags.get(STATE_TAG) == "done" or run.run_id in tried:
            continue
        reference_run = _reference_run(spec, key, runs)
        if reference_run is _WAITING:
            waiting = f"waiting for reference {spec.references[key].key}"
            if run.tags.get(STATE_TAG) != waiting:
                tracking.set_run_tags(tracking_uri, run.run_id, {STATE_TAG: waiting})
            continue
        if not _claim(tracking_uri, run):
            continue
        tried.add(run.run_id)
        done += _analyse(spec, tracking_uri, run, reference_run, notify)
    return done


def analysis_counts(spec: StudySpec, tracking_uri: str) -> dict[str, int]:
    """{state: finished trial runs in it}: done, waiting for a reference, failed, not yet."""
    counts: dict[str, int] = {}
    if spec.analysis is None:
        return counts
    tracking.check_tracking_reachable(tracking_uri)  # one line within seconds, not minutes of retries
    for run in tracking.latest_finished(tracking_uri, spec.experiment, spec.name).values():
        state = run.tags.get(STATE_TAG, "to do")
        state = "failed" if state.startswith("failed") else "waiting" if state.startswith("waiting") else state
        counts[state] = counts.get(state, 0) + 1
    return counts


_WAITING = object()


def _reference_run(spec: StudySpec, key: str, runs: dict[str, tracking.RunRecord]):
    """The run id of the trial's CKA reference, None when it has none (or is its own),
    _WAITING when the reference has not finished."""
    reference = spec.references.get(key)
    if spec.analysis.cka is None or reference is None or reference.key == key:
        return None
    return runs[reference.key].run_id if reference.key in runs else _WAITING


def _analyse(spec: StudySpec, tracking_uri: str, run: dict, reference_run: str | None,
             notify: Callable[[str], None]) -> int:
    started = time.time()
    try:
        analyse_run(tracking_uri, run.run_id, spec.analysis, reference_run_id=reference_run,
                    device=run.params.get("device", "auto"))
    except Exception as err:  # an analysis never fails its trial; the next `ablate run` tries again
        reason = one_line(err)
        tracking.set_run_tags(tracking_uri, run.run_id, {STATE_TAG: f"failed: {reason}", CLAIM_TAG: ""})
        notify(f"analysis of {run.label} failed: {reason}")
        return 0
    except BaseException:  # Ctrl-C: free the claim for the next run
        tracking.set_run_tags(tracking_uri, run.run_id, {CLAIM_TAG: ""})
        raise
    tracking.set_run_tags(tracking_uri, run.run_id, {CLAIM_TAG: ""})
    notify(f"analysed {run.label} ({time.time() - started:.0f} s)")
    return 1


def claim_is_held(held: str, now: float) -> bool:
    """Whether a claim tag ("scope|host|pid|nonce|time"; older ones "host:pid:nonce:time")
    still stands: its process lives, or, in another pid scope, it is younger than
    CLAIM_EXPIRES_S."""
    if not held:
        return False
    parts = held.split("|")
    if len(parts) == 5 and parts[0] == PID_SCOPE and not pid_alive(int(parts[2])):
        return False
    return now - float(parts[-1] if len(parts) == 5 else held.rsplit(":", 1)[-1]) < CLAIM_EXPIRES_S


def _claim(tracking_uri: str, run: dict) -> bool:
    if claim_is_held(run.tags.get(CLAIM_TAG, ""), time.time()):
        return False
    token = f"{PID_SCOPE}|{HOST}|{os.getpid()}|{uuid.uuid4().hex[:8]}|{time.time():.0f}"
    tracking.set_run_tags(tracking_uri, run.run_id, {CLAIM_TAG: token})
    time.sleep(_READ_BACK_S)
    return tracking.run_record(tracking_uri, run.run_id).tags.get(CLAIM_TAG) == token
