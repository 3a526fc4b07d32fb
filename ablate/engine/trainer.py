"""The Trainer: optimiser, schedule, epochs, evaluation, memory and time accounting,
per-epoch checkpoints. Imports neither optuna nor mlflow: metrics leave through callbacks.
The epoch loop itself is ablate.engine.loop.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from ..config import TrainConfig
from ..data import load_data
from ..devices import select_device
from . import memory
from .build import network_from_config
from .checkpoints import CHECKPOINT_NAME, load_checkpoint, restore_rng, rng_state, save_checkpoint
from .cost import network_cost
from .distributed import (ALONE, device_for, join_group, launched_by_torchrun, leave_group, start_followers,
                          stop_followers)
from .fast_path import apply_fast_path
from .loop import EpochRun, train_epoch
from .network import LocalNetwork
from .schedule import learning_rate
from .stopping import StopRequest


class Callback:
    """Receives metrics; override what you need (the study plugs MLflow in here)."""

    def on_train_start(self, trainer: "Trainer") -> None: ...

    def on_epoch_end(self, metrics: dict) -> None: ...

    def on_train_end(self, result: dict) -> None: ...


def seed_everything(seed: int, *, cudnn_benchmark: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # deterministic where torch allows, unless cuDNN may pick its fastest algorithms
    torch.backends.cudnn.deterministic = not cudnn_benchmark
    torch.backends.cudnn.benchmark = cudnn_benchmark


def build_optimizer(config: TrainConfig, net: LocalNetwork) -> torch.optim.Optimizer:
    """One optimiser over all primary and auxiliary parameters (one step per batch)."""
    params = net.parameters()
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               nesterov=config.nesterov, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


class Trainer:
    """Trains one network as a TrainConfig says, reporting to callbacks.

    `checkpoint_dir`, when given, receives a checkpoint after every epoch; a Trainer
    started on a directory holding one resumes from it and ends with the same numbers
    as an uninterrupted run. `stop` (see ablate.engine.stopping) ends training with a
    KeyboardInterrupt at the end of an epoch, after its checkpoint, or at once.
    `metered_steps`: how many steps of each epoch the CPU memory meter tracks (None:
    every step; see ablate.engine.loop).
    """

    def __init__(self, config: TrainConfig, *, callbacks=(), checkpoint_dir: str | Path | None = None,
                 progress: bool = False, data=None, stop: StopRequest | None = None,
                 metered_steps: int | None = 1):
        self.config = config
        self.callbacks = list(callbacks)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.progress = progress
        self.ranks = ALONE  # until fit() joins the trial's process group (config.nproc > 1)
        self._given_data = data is not None
        self.device = select_device(device_for(config.device, config.nproc))
        self.data = data or load_data(
            config.dataset, root=config.data_root, download=config.download,
            val_size=config.val_size, split_seed=config.split_seed,
            train_subset=config.train_subset, device=self.device, augment=config.augment,
            num_workers=config.num_workers, batch_size=config.batch_size,
            eval_batch_size=config.eval_batch_size, seed=config.seed,
        )
        seed_everything(config.seed, cudnn_benchmark=config.cudnn_benchmark)
        self.net, self.memory_format = apply_fast_path(
            network_from_config(config, self.data.info).to(self.device), self.device, bf16=config.bf16,
            channels_last=config.channels_last, compile=config.compile)
        self.optimizer = build_optimizer(config, self.net)
        self.saved_meter = memory.SavedTensorMeter()
        self.metered_steps = metered_steps
        self.history: list[dict] = []
        self.start_epoch = 1
        self.stop = stop or StopRequest()
        self._resume()

    @functools.cached_property
    def cost(self) -> dict:
        """The network's parameters and FLOPs (ablate.engine.cost.network_cost)."""
        return network_cost(self.config, self.data.info)

    # ---------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_NAME if self.checkpoint_dir else None

    def _resume(self) -> None:
        path = self.checkpoint_path
        state = None if path is None else load_checkpoint(path, self.device, self.config.flat())
        if state is None:
            return
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = state["history"]
        self.start_epoch = state["epoch"] + 1
        restore_rng(state["rng"], self.device)

    def _save_checkpoint(self, epoch: int) -> None:
        if self.checkpoint_path is None or not self.ranks.is_main:
            return
        save_checkpoint(self.checkpoint_path, {
            "epoch": epoch,
            "config": self.config.flat(),
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "rng": rng_state(self.device),
        })

    # ---------------------------------------------------------------- loops
    def _autocast(self):
        if not self.config.bf16:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    @torch.no_grad()
    def evaluate(self, loader) -> float | None:
        if loader is None:
            return None
        self.net.eval()
        correct = torch.zeros((), device=self.device)
        seen = 0
        for x, y in loader:
            x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
            y = y.to(self.device, non_blocking=True)
            with self._autocast():
                correct += (self.net(x).argmax(1) == y).sum()
            seen += y.numel()
        return correct.item() / max(seen, 1)

    def _train_epoch(self, epoch: int, bar) -> EpochRun:
        self.data.train.set_epoch(epoch)

        def on_step():
            if bar is not None:
                bar.update(1)
            if self.stop.immediate:
                raise KeyboardInterrupt

        meter = self.saved_meter if self.device.type == "cpu" else None
        return train_epoch(self.net, self.optimizer, self.data.train, self.device, memory_format=self.memory_format,
                           meter=meter, metered_steps=self.metered_steps, on_step=on_step, ranks=self.ranks)

    def fit(self) -> dict:
        """Train every remaining epoch; with `nproc` > 1 as one rank of the trial's process
        group (ablate.engine.distributed), starting the others unless torchrun did."""
        nproc = self.config.nproc
        if nproc == 1:
            return self._fit()
        if self._given_data:
            raise UserInputError("nproc > 1: every process loads its data from the settings; pass no data=")
        followers = [] if launched_by_torchrun() else start_followers(nproc, train_follower, self.config,
                                                                        self.checkpoint_dir)
        finished = False
        try:
            self.ranks = join_group(self.device)
            self.data.train.shard(self.ranks.rank, self.ranks.world)
            if self.ranks.world != nproc:
                raise UserInputError(f"nproc {nproc}, but torchrun started {self.ranks.world} processes; "
                                     f"set --nproc {self.ranks.world} or torchrun --nproc-per-node {nproc}")
            result = self._fit()
            finished = True
            return result
        finally:
            leave_group()
            stop_followers(followers, failed=not finished)

    def _fit(self) -> dict:
        config = self.config
        if not self.ranks.is_main:
            self.callbacks, self.progress = [], False  # metrics leave through rank 0
        for cb in self.callbacks:
            cb.on_train_start(self)
        bar = self._progress_bar()
        status, message = "finished", ""
        try:
            for epoch in range(self.start_epoch, config.epochs + 1):
                lr = learning_rate(config, epoch)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                memory.reset_peak(self.device)
                self.saved_meter.reset_peak()
                if bar is not None:
                    bar.set_description(f"epoch {epoch}/{config.epochs}")
                run = self._train_epoch(epoch, bar)
                sums = run.totals.read()
                if sums.first_bad_step is not None:
                    status = "diverged"
                    message = (f"diverged at epoch {epoch}, step {sums.first_bad_step}: the loss is not finite; "
                               "lower the lr")
                    break
                metrics = self._epoch_metrics(epoch, lr, sums, run)
                self.history.append(metrics)
                self._save_checkpoint(epoch)
                if bar is not None:
                    bar.set_postfix(loss=f"{metrics['train_loss']:.3f}", val=_pct(metrics["val_acc"]),
                                    test=_pct(metrics["test_acc"]))
                for cb in self.callbacks:
                    cb.on_epoch_end(metrics)
                if self.stop.requested and epoch < config.epochs:
                    raise KeyboardInterrupt  # the epoch's checkpoint is saved: a restart resumes after it
        finally:
            if bar is not None:
                bar.close()
        result = self._result(status, message)
        for cb in self.callbacks:
            cb.on_train_end(result)
        return result

    def _progress_bar(self):
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        remaining = self.config.epochs - self.start_epoch + 1
        return tqdm(total=remaining * len(self.data.train), unit="batch", dynamic_ncols=True, leave=False)

    def _epoch_metrics(self, epoch: int, lr: float, sums, run: EpochRun) -> dict:
        if self.device.type == "cuda":
            peak = memory.peak_cuda_bytes(self.device)
        else:
            peak = self.saved_meter.peak
        return {
            "epoch": epoch,
            "lr": lr,
            "train_loss": sums.loss,
            "train_acc": sums.acc,
            "val_acc": self.evaluate(self.data.val),
            "test_acc": self.evaluate(self.data.test),
            "aux_loss": sums.aux_loss,
            "aux_acc": sums.aux_acc,
            "epoch_time_s": run.seconds,  # the whole epoch, its metered step included
            "examples_per_s": run.examples_per_s,  # over the unmetered steps
            "peak_memory_bytes": peak,
            "peak_saved_bytes": self.saved_meter.peak if self.device.type == "cpu" else None,
            "peak_rss_bytes": memory.peak_rss_bytes(),
        }

    def _result(self, status: str, message: str) -> dict:
        history = self.history
        final = history[-1] if history else None
        with_val = [m for m in history if m["val_acc"] is not None]
        best = max(with_val, key=lambda m: (m["val_acc"], -m["epoch"])) if with_val else None  # earliest best
        return {
            "status": status,
            "message": message,
            "epochs_completed": len(history),
            "final": final,
            "best": None if best is None else {
                "epoch": best["epoch"], "val_acc": best["val_acc"], "test_acc": best["test_acc"]},
            "peak_memory_bytes": max((m["peak_memory_bytes"] for m in history), default=None),
            "time_per_epoch_s": (sum(m["epoch_time_s"] for m in history) / len(history)) if history else None,
            "history": history,
            "device": str(self.device),
            "plan": self.net.plan.as_dict(),
            "data": dataclasses.asdict(self.data.info),
            "config": self.config.flat(),
        }


def train_follower(config: TrainConfig, checkpoint_dir: Path | None) -> None:
    """Rank 1..N-1 of a trial whose rank 0 started it (ablate.engine.distributed)."""
    Trainer(config, checkpoint_dir=checkpoint_dir).fit()


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"
