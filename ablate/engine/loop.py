"""One training epoch, with only arithmetic in its hot path.

Per step the loop launches the step's own kernels and four more: the step's results
come as one device vector (StepOutput.stats, one stack), which one multiply-add folds into
a preallocated buffer of running sums, and three more count, per entry, the steps whose
running sums are still finite. Nothing is read back to the host before the epoch ends.

The saved-tensor meter (CPU peak memory, ablate.engine.memory) runs a Python hook per
saved tensor, so it meters `metered_steps` steps per epoch (the first ones; every full
batch of an epoch has the same shapes, so one step shows the peak) and the time of the
others is the epoch's throughput. `metered_steps=None` meters every step (the loop as it
was before, kept so that `make bench` can show the meter's cost side by side).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from .distributed import ALONE, Ranks, average_gradients, sum_over_ranks
from .memory import SavedTensorMeter
from .network import LocalNetwork


class EpochTotals:
    """Running sums of one epoch on the device, in one buffer read once per epoch:
    row 0 sums each entry of StepOutput.stats, losses weighted by the batch size;
    row 1 counts, per entry, the steps after which that sum was still finite."""

    def __init__(self, num_local: int, device: torch.device):
        self.num_losses = 1 + num_local
        self.buffer = torch.zeros(2, 2 * self.num_losses, device=device)
        self.sums, self.finite = self.buffer  # views of its rows, made once
        self.examples = 0
        self.steps = 0
        self._weights: dict[int, torch.Tensor] = {}  # batch size -> [batch] * losses + [1] * counts

    def add(self, stats: torch.Tensor, batch: int) -> None:
        weights = self._weights.get(batch)
        if weights is None:
            weights = self._weights[batch] = torch.tensor([float(batch)] * self.num_losses + [1.0] * self.num_losses,
                                                          device=self.buffer.device)
        self.sums.addcmul_(stats, weights)  # sums + stats * weights, rounded as a multiply then an add
        # A sum stays non-finite once a step's value is (NaN and inf propagate), so the
        # count of finite steps places the first bad one without a host read per step;
        # x * 0 == 0 holds exactly when x is finite (one kernel fewer than isfinite's four).
        self.finite.add_(self.sums.mul(0).eq_(0))
        self.examples += batch
        self.steps += 1

    def reduce(self, ranks: Ranks) -> None:
        """The totals of the whole trial's processes (two all-reduces, once per epoch)."""
        if ranks.world == 1:
            return
        sums = torch.cat([self.sums, self.sums.new_tensor([self.examples])])
        sum_over_ranks(sums, ranks)
        finite = sum_over_ranks(self.finite.clone(), ranks, torch.distributed.ReduceOp.MIN)
        self.sums.copy_(sums[:-1])
        self.finite.copy_(finite)
        self.examples = int(sums[-1].item())

    def read(self) -> "EpochSums":
        """The epoch's means, in one host read (the per-layer means divided on the device,
        in float32, as they always were: the recorded numbers stay bit for bit)."""
        n = max(self.examples, 1)
        k = self.num_losses
        sums = self.sums
        aux_loss, aux_acc = (sums[1:k] / n).tolist(), (sums[k + 1:] / n).tolist()
        (loss, correct), finite = sums[[0, k]].tolist(), self.finite.min().item()
        return EpochSums(loss=loss / n, aux_loss=aux_loss, acc=correct / n, aux_acc=aux_acc, examples=self.examples,
                         first_bad_step=int(finite) + 1 if finite < self.steps else None)


@dataclass(frozen=True)
class EpochSums:
    loss: float
    aux_loss: list[float]
    acc: float
    aux_acc: list[float]
    examples: int
    first_bad_step: int | None  # the first step whose loss was not finite


@dataclass(frozen=True)
class EpochRun:
    totals: EpochTotals
    seconds: float  # the whole epoch, metered steps included
    metered_seconds: float  # the metered steps alone
    metered_examples: int

    @property
    def examples_per_s(self) -> float:
        """Throughput of the unmetered steps (of all steps when every one was metered)."""
        examples = self.totals.examples - self.metered_examples
        seconds = self.seconds - self.metered_seconds
        if examples <= 0 or seconds <= 0:
            examples, seconds = self.totals.examples, self.seconds
        return examples / seconds if seconds > 0 else float("inf")


def train_epoch(net: LocalNetwork, optimizer: torch.optim.Optimizer, loader, device: torch.device, *,
                memory_format: torch.memory_format, meter: SavedTensorMeter | None, metered_steps: int | None = 1,
                on_step=None, ranks: Ranks = ALONE) -> EpochRun:
    """One pass over `loader`. `meter` (None on CUDA, where the allocator keeps the peak)
    tracks the first `metered_steps` steps, or every step when it is None; `on_step()`
    runs after each step (progress bar, stop request). With several `ranks` each trains
    on its slice of every batch, gradients averaged (ablate.engine.distributed)."""
    net.train()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    loader_slices = ranks.world > 1 and getattr(loader, "slices_batches", False)
    totals = EpochTotals(net.num_local, device)
    metered_seconds, metered_examples = 0.0, 0
    start = time.perf_counter()
    for step, (x, y) in enumerate(loader, start=1):
        metered = meter is not None and (metered_steps is None or step <= metered_steps)
        step_start = time.perf_counter() if metered else 0.0
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if loader_slices:  # the loader gave this rank its equal slice already
            global_batch = y.numel() * ranks.world
        else:
            global_batch, x, y = y.numel(), ranks.shard(x), ranks.shard(y)
        x = x.contiguous(memory_format=memory_format)
        optimizer.zero_grad(set_to_none=True)
        with meter.track() if metered else nullcontext():
            out = net.train_step(x, y)
        average_gradients(params, ranks, y.numel() / global_batch)
        optimizer.step()
        totals.add(out.stats, y.numel())
        if metered:  # a CPU step: synchronous, so the host clock times it
            metered_seconds += time.perf_counter() - step_start
            metered_examples += global_batch  # totals.examples counts every rank's slice
        if on_step is not None:
            on_step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    totals.reduce(ranks)
    return EpochRun(totals, time.perf_counter() - start, metered_seconds, metered_examples)
