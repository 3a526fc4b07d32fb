"""Worker processes of `ablate run --jobs N`: the parent starts and watches them, each
trains trials through its own session (entry point: `worker_main`)."""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
from collections.abc import Callable

import optuna
import torch

from ..engine.stopping import StopRequest, stop_on_interrupt
from ..errors import one_line
from ..outage import StorageFault
from .display import Display
from .outcome import TrialOutcome
from .progress import snapshot
from .session import Session


def torch_threads(jobs: int) -> int:
    """Threads per worker so that `jobs` workers share this machine's cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores // max(jobs, 1))


def worker_main(payload: dict, events, stop) -> None:
    """Entry point of one worker process (multiprocessing "spawn"): train trials of the
    study in `payload` until none is left or `stop` (an Event) is set, reporting each
    outcome on `events`. Ctrl-C reaches the whole process group; the parent decides. A
    SIGTERM (from the parent, or from Slurm to every process of a job) stops the worker
    as the first Ctrl-C stops `ablate run`, and at once when a stop was asked already."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(payload["threads"])
    request = StopRequest(also=stop.is_set)
    try:
        with stop_on_interrupt(request, lambda text: None, signals=(signal.SIGTERM,)):
            work_in_process(payload, events.put, request)
    except KeyboardInterrupt:
        return  # asked to stop: the interrupted trial is recorded, the parent reports it
    except StorageFault as err:  # recorded and resumable; the parent stops the others and says why
        events.put(("fault", os.getpid(), str(err)))
    except Exception as err:
        events.put(("crashed", os.getpid(), one_line(err)))
        raise


def work_in_process(payload: dict, send: Callable[[tuple], None], stop: StopRequest) -> None:
    """The body of a worker process: connect to the study and train until done."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    session = Session(payload["spec"], payload["storage"], payload["tracking_uri"],
                      parent_id=payload["parent_id"], stale_after_s=payload["stale_after_s"],
                      sampler_seed=payload["sampler_seed"], stop=stop)
    session.notify = lambda text: send(("note", text))
    session.work(lambda outcome: send(("outcome", outcome)))


def run_workers(session: Session, jobs: int, tracking_uri: str, display: Display,
                collect: Callable[[TrialOutcome], None], note: Callable[[str], None]) -> None:
    """Start `jobs` spawned worker processes and show their progress until all stop,
    passing on their notes and a note for each worker that crashed. The first Ctrl-C
    (`session.stop.requested`) asks the workers to stop after their current epoch; a
    second terminates them (their trials resume in the next run)."""
    context = multiprocessing.get_context("spawn")
    events, stop = context.Queue(), context.Event()
    base_seed = session.spec.seeds[0]
    procs = []
    for index in range(jobs):
        payload = {"spec": session.spec, "storage": session.storage_url, "tracking_uri": tracking_uri,
                   "parent_id": session.parent_id, "stale_after_s": session.stale_after_s,
                   "threads": torch_threads(jobs), "sampler_seed": base_seed + 1000 * (index + 1)}
        procs.append(context.Process(target=worker_main, args=(payload, events, stop), name=f"ablate-worker-{index}"))
    for proc in procs:
        proc.start()
    crashed, faults = set(), []

    def handle(event: tuple) -> None:
        if event[0] == "outcome":
            collect(event[1])
        elif event[0] == "note":
            note(event[1])
        elif event[0] == "fault":
            faults.append(event[2])
            stop.set()  # every worker writes to the same disk
        elif event[0] == "crashed":
            crashed.add(event[1])
            note(f"worker pid {event[1]} stopped: {event[2]}")

    try:
        while any(proc.is_alive() for proc in procs):
            if session.stop.requested:
                stop.set()
            try:
                handle(events.get(timeout=0.5))
            except queue.Empty:
                pass
            display.refresh(lambda: snapshot(session))
    except KeyboardInterrupt:
        stop.set()  # so that the SIGTERM below stops each worker at once (see worker_main)
        for proc in procs:
            proc.terminate()
        raise
    finally:
        while True:
            try:
                handle(events.get_nowait())
            except queue.Empty:
                break
        for proc in procs:
            proc.join()
    if faults:
        raise StorageFault(faults[0])
    if session.stop.requested:
        raise session.stop.interruption()
    for proc in procs:
        if proc.exitcode != 0 and proc.pid not in crashed:
            note(f"worker pid {proc.pid} exited with code {proc.exitcode}")
