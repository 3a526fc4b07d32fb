"""One trial as N processes (the `nproc` setting), with torch.distributed under torchrun's
conventions: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; NCCL on GPUs, gloo
on a CPU.

- Started by torchrun (or Slurm setting those variables), every process is a rank already.
- Otherwise the process that calls `Trainer.fit` becomes rank 0 (it keeps its callbacks:
  the study's Optuna and MLflow reporting, the progress bar) and starts ranks 1..N-1 as
  spawned processes that train the same config without callbacks.

Every rank draws the same global batch (same seed, same loader) and trains on its slice
of it; after all local backward passes of a step, one all-reduce averages every gradient,
each rank's weighted by its slice, so the optimiser steps on the global batch's gradient
(the memory saving of local learning is untouched: activations are freed as before).
BatchNorm statistics are per process, as under DistributedDataParallel. The epoch's
running totals are summed over ranks once per epoch; rank 0 writes the checkpoints and
every rank resumes from them.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Ranks:
    """This process's place in its trial's process group (rank 0 of 1 when alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch (slices differ by at most one example)."""
        return x if self.world == 1 else torch.tensor_split(x, self.world)[self.rank]


ALONE = Ranks()


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def device_for(name: str, nproc: int) -> str:
    """A CUDA device per local rank (cuda:LOCAL_RANK) when a trial spans processes; any
    other device as named."""
    if nproc > 1 and name in ("cuda", "auto") and torch.cuda.is_available():
        return f"cuda:{os.environ.get('LOCAL_RANK', 0)}"
    return name


def join_group(device: torch.device) -> Ranks:
    """Join the process group the torchrun variables describe (once per process)."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_followers(nproc: int, target, *args) -> list:
    """Set the torchrun variables for a group of `nproc` on this host, with this process
    as rank 0, and start ranks 1..nproc-1 running `target(*args)` in spawned processes."""
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(nproc),
                       "RANK": "0", "LOCAL_RANK": "0"})
    context = mp.get_context("spawn")
    followers = []
    for rank in range(1, nproc):
        process = context.Process(target=_follower, args=(rank, dict(os.environ), target, args), daemon=True)
        process.start()
        followers.append(process)
    return followers


def _follower(rank: int, environment: dict, target, args) -> None:
    os.environ.update({**environment, "RANK": str(rank), "LOCAL_RANK": str(rank)})
    target(*args)


def stop_followers(followers: list, *, failed: bool) -> None:
    """Wait for ranks 1..N-1 (or end them, when rank 0 stopped early); the torchrun
    variables this process set for them are removed (torchrun's own stay)."""
    for process in followers:
        if failed:
            process.terminate()
        process.join()
    for name in TORCHRUN_VARIABLES if followers else ():
        os.environ.pop(name, None)
    bad = [p.exitcode for p in followers if p.exitcode not in (0, None)]
    if bad and not failed:
        raise RuntimeError(f"a training process of this trial exited with code {bad[0]}")


def average_gradients(params: list[torch.Tensor], ranks: Ranks, share: float) -> None:
    """One all-reduce over every gradient: the sum over ranks of each gradient times that
    rank's `share` of the global batch, i.e. the global batch's mean gradient."""
    grads = [p.grad for p in params if p.grad is not None]
    if ranks.world == 1 or not grads:
        return
    flat = _flatten_dense_tensors(grads).mul_(share)
    dist.all_reduce(flat)
    for grad, reduced in zip(grads, _unflatten_dense_tensors(flat, grads)):
        grad.copy_(reduced)


def sum_over_ranks(tensor: torch.Tensor, ranks: Ranks, op=None) -> torch.Tensor:
    if ranks.world > 1:
        dist.all_reduce(tensor, op=op or dist.ReduceOp.SUM)
    return tensor
