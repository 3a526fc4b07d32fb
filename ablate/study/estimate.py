"""What a study will cost before it trains: its training FLOPs (each cell's network cost,
ablate.engine.cost, times the examples it sees) and the time that takes on this machine,
from a few timed training steps of the study's most expensive cell on random inputs of
its data's shape (no data is read, nothing is written)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from ..config import TrainConfig
from ..data import DATASETS
from ..data.base import DataInfo
from ..data.split import validation_count
from ..engine.build import network_from_config
from ..engine.cost import network_cost, training_flops
from ..engine.trainer import build_optimizer, select_device
from ..spec import StudySpec
from .text import duration

CALIBRATION_STEPS = 3  # timed (their median) at most, after untimed warm-up steps ...
WARM_UP = 2  # ... (the first steps of a process allocate and pick kernels: seconds, not milliseconds),
CALIBRATION_BUDGET_S = 10.0  # ... stopping early once this is spent (a big network on a laptop CPU)


@dataclass(frozen=True)
class Estimate:
    flops: float | None  # training FLOPs of every trial still to train (None: a dataset of unknown size)
    trials: int
    seconds_per_step: float | None  # the most expensive cell's training step here
    flops_per_second: float | None  # what that step achieved
    device: str

    @property
    def seconds(self) -> float | None:
        if self.flops is None or not self.flops_per_second:
            return None
        return self.flops / self.flops_per_second

    def render(self) -> str:
        if self.flops is None:
            return f"  cost: unknown (the dataset's size is known only once read; {self.trials} trials)"
        line = f"  cost: {self.flops / 1e12:.3g} TFLOPs of training ({self.trials} trials)"
        if self.seconds is None:
            return line
        return (line + f"; about {_about(self.seconds)} on this machine ({self.device}: "
                f"{self.flops_per_second / 1e9:.3g} GFLOP/s measured in training steps of the most expensive "
                "cell; evaluation and data loading come on top)")


def _about(seconds: float) -> str:
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return duration(seconds)


def _info(config: TrainConfig) -> DataInfo:
    shape = DATASETS[config.dataset].shape
    train = None
    if shape.train_size is not None:
        held_out = validation_count(shape.train_size, _val_size(config.val_size))
        train = min(shape.train_size - held_out, config.train_subset or shape.train_size)
    return DataInfo(name=config.dataset, num_classes=shape.num_classes, channels=shape.channels,
                    image_size=shape.image_size, mean=(0.5,) * shape.channels, std=(0.5,) * shape.channels,
                    train_size=train or 0, val_size=0, test_size=0)


def _val_size(value: float):
    return int(value) if value >= 1 and float(value).is_integer() else value


def trial_flops(config: TrainConfig) -> tuple[float | None, float]:
    """(training FLOPs of one trial, FLOPs of one training step)."""
    info = _info(config)
    per_example = training_flops(network_cost(config, info))
    total = None if DATASETS[config.dataset].shape.train_size is None else per_example * info.train_size * config.epochs
    return total, per_example * config.batch_size


def time_step(config: TrainConfig, steps: int = CALIBRATION_STEPS) -> float:
    """Seconds one training step of `config` takes here (random inputs, its own device)."""
    device = select_device(config.device)
    info = _info(config)
    net = network_from_config(config, info).to(device)
    optimizer = build_optimizer(config, net)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(config.batch_size, info.channels, info.image_size, info.image_size, generator=generator).to(device)
    y = torch.randint(0, info.num_classes, (config.batch_size,), generator=generator).to(device)
    net.train()
    times = []
    begun = time.perf_counter()
    while len(times) < WARM_UP + steps:
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        net.train_step(x, y)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - started)
        if len(times) > 1 and time.perf_counter() - begun > CALIBRATION_BUDGET_S:
            break  # one warm-up and one timed step at least
    return statistics.median(times[min(WARM_UP, len(times) - 1):])


def estimate(spec: StudySpec, keys: set[str] | None = None, calibrate: bool = True) -> Estimate:
    """The cost of the trials of `spec` (those in `keys`, if given: e.g. the unfinished)."""
    trials = [t for t in spec.trials if keys is None or t.key in keys]
    if spec.search is not None:  # every sampled point costs about what the fixed settings do
        base = spec.trial({}, spec.seeds[0])
        trials = [base] * spec.search.n_trials
    per_cell = {}
    for trial in trials:
        if trial.cell_id not in per_cell:
            per_cell[trial.cell_id] = (trial.config, *trial_flops(trial.config))
    totals = [per_cell[t.cell_id][1] for t in trials]
    flops = None if any(v is None for v in totals) else float(sum(totals))
    if not per_cell or not calibrate:
        return Estimate(flops, len(trials), None, None, "")
    config, _, step_flops = max(per_cell.values(), key=lambda c: c[2])
    seconds = time_step(config)
    return Estimate(flops, len(trials), seconds, step_flops / seconds, str(select_device(config.device)))
