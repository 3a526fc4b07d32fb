"""The epoch loop: the memory meter off the hot path, running totals in one buffer."""

import math

import pytest
import torch

from ablate.config import TrainConfig
from ablate.engine import Trainer
from ablate.engine.loop import EpochTotals

TINY = dict(model="resnet20", width=0.25, dataset="digits", batch_size=32, train_subset=192, val_size=32,
            epochs=2, lr=0.05, rule="auglocal", aux_depth=2, device="cpu")


def counted_packs(trainer: Trainer) -> list[int]:
    """Counts the meter's saved-tensor hook calls on `trainer`."""
    calls = [0]
    pack = trainer.saved_meter._pack

    def counting(tensor):
        calls[0] += 1
        return pack(tensor)

    trainer.saved_meter._pack = counting
    return calls


def test_the_meter_tracks_one_step_per_epoch_and_finds_the_peak_of_every_step():
    config = TrainConfig(**TINY)
    one, every = Trainer(config), Trainer(config, metered_steps=None)
    calls_one, calls_every = counted_packs(one), counted_packs(every)
    first, all_steps = one.fit(), every.fit()

    steps = len(one.data.train)
    assert steps >= 4 and calls_every[0] == steps * calls_one[0]  # same steps, each metered
    # every full batch has the same shapes: the first step's peak is the epoch's
    assert [m["peak_saved_bytes"] for m in first["history"]] == [m["peak_saved_bytes"] for m in all_steps["history"]]
    assert all(m["peak_saved_bytes"] > 0 for m in first["history"])
    # the meter changes no number
    for a, b in zip(first["history"], all_steps["history"]):
        assert (a["train_loss"], a["aux_loss"], a["test_acc"]) == (b["train_loss"], b["aux_loss"], b["test_acc"])
    for m in first["history"]:
        assert m["epoch_time_s"] > 0 and m["examples_per_s"] > 0


def test_totals_sum_losses_by_batch_and_counts_as_they_are():
    totals = EpochTotals(num_local=1, device=torch.device("cpu"))
    totals.add(torch.tensor([2.0, 1.0, 3.0, 5.0]), batch=4)  # [loss, aux_loss, correct, aux_correct]
    totals.add(torch.tensor([1.0, 4.0, 1.0, 2.0]), batch=2)
    sums = totals.read()
    assert (sums.loss, sums.aux_loss, sums.acc, sums.aux_acc) == (10 / 6, [12 / 6], 4 / 6, [pytest.approx(7 / 6)])
    assert sums.examples == 6 and sums.first_bad_step is None


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_totals_name_the_first_step_whose_loss_was_not_finite(bad):
    totals = EpochTotals(num_local=1, device=torch.device("cpu"))
    for step in range(1, 6):
        aux = bad if step in (3, 5) else 1.0
        totals.add(torch.tensor([1.0, aux, 1.0, 1.0]), batch=8)
    assert totals.read().first_bad_step == 3


def test_a_step_adds_to_the_totals_with_four_kernels_whatever_the_depth():
    """The totals of an epoch cost a fixed handful of kernels per step, not a few per layer."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(func.__name__)
            return func(*args, **(kwargs or {}))

    for num_local in (1, 50):
        totals = EpochTotals(num_local=num_local, device=torch.device("cpu"))
        stats = torch.ones(2 + 2 * num_local)
        totals.add(stats, batch=8)  # the first batch of a size makes its weights
        with Count() as count:
            totals.add(stats, batch=8)
        computing = [op for op in count.ops if not op.startswith(("select", "view", "alias", "slice"))]
        assert len(computing) == 4, count.ops  # multiply-add; multiply, compare, add
