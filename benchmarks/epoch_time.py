"""(d) One training epoch, end to end, in two implementation styles:

(a) reference, the released AugLocal code's style: a torchvision DataLoader of PIL
    images (reflect-pad 4 random crop, flip, ToTensor, Normalize) in worker processes
    started anew every epoch, float32, channels-first, cuDNN autotuning on, and the
    loss and accuracy read back with `.item()` after every batch;
(b) ablate's fast path: the Trainer's own epoch loop (ablate.engine.loop, its memory meter
    on the first step of each epoch on a CPU) on the device-resident loader (batched
    augmentation on the device), channels-last, bf16 autocast, cuDNN autotuning, metrics
    summed on the device and read once per epoch, optionally torch.compile. The loop, not
    the Trainer, so that this benchmark needs no pydantic (a bare GPU machine).

Both run the same gradient-isolated step (LocalNetwork.train_step) on the same random
CIFAR-shaped uint8 images, for resnet32 (d=2) and resnet110 (d=3), tau=0.5 linear decay,
uniform selection, under bp and auglocal. Each configuration runs a warm-up epoch, then
`timed_epochs` more, and reports the fastest of those (other processes on a shared machine
only ever add time); worker start-up counts (the released code pays it every epoch),
compilation and autotuning do not. Peak memory is measured as everywhere (ablate.engine.memory):
CUDA max_memory_allocated, CPU bytes held for backward.
"""

from __future__ import annotations

import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchvision import transforms

from ablate.data import DataBundle, DataInfo, DeviceLoader
from ablate.data.base import drop_last_for_training
from ablate.data.torchvision_sets import SETS
from ablate.engine import build_network, describe_network, memory, training_flops
from ablate.engine.fast_path import apply_fast_path
from ablate.engine.loop import train_epoch

from .loader import PILImages

CIFAR = SETS["cifar10"]
MODELS = (("resnet32", 2), ("resnet110", 3))  # (backbone, AugLocal's base auxiliary depth d)
RULES = ("bp", "auglocal")
PLAN = dict(selection="uniform", decay="linear", decay_coeff=0.5)
FAST_PATH = dict(bf16=True, channels_last=True, cudnn_benchmark=True)
SGD = dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)


@dataclass(frozen=True)
class Scale:
    """How large one benchmark epoch is."""

    images: int
    batch: int
    workers: int  # the reference's DataLoader processes
    timed_epochs: int = 2


# CIFAR-10's 50,000 training images at the paper's batch, with the released code's 8 workers
GPU_SCALE = Scale(images=50_000, batch=1024, workers=8)
# a 2-core CPU trains resnet110 at a few images per second: a sample of an epoch
CPU_SCALE = Scale(images=256, batch=64, workers=2)


@dataclass
class Epoch:
    seconds: float
    peak_bytes: int


def random_cifar(images: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 32, 32, 3) images and labels, made in memory (no download)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, images)


def settings(model: str, depth: int, rule: str) -> dict:
    return dict(model=model, rule=rule, aux_depth=depth, **PLAN)


def training_flops_of(model: str, depth: int, rule: str) -> int:
    net = build_network(head_layers=None, seed=0, in_channels=3, num_classes=10, image_size=32,
                        **settings(model, depth, rule))
    return training_flops(describe_network(net))


# ------------------------------------------------------------------------ (a) reference


def network(model: str, depth: int, rule: str, device: torch.device):
    """(network, SGD optimiser), seed 0, cuDNN autotuning on (both paths)."""
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = True, False
    net = build_network(head_layers=None, seed=0, in_channels=3, num_classes=10, image_size=32,
                        **settings(model, depth, rule)).to(device).train()
    return net, torch.optim.SGD(net.parameters(), **SGD)


def reference_epochs(model: str, depth: int, rule: str, images_hwc: np.ndarray, labels: np.ndarray,
                     scale: Scale, device: torch.device) -> Epoch:
    net, optimizer = network(model, depth, rule, device)
    pipeline = transforms.Compose([
        transforms.RandomCrop(32, padding=4, padding_mode="reflect"),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(CIFAR.mean, CIFAR.std),
    ])
    loader = DataLoader(PILImages(images_hwc, labels, pipeline), batch_size=scale.batch, shuffle=True,
                        num_workers=scale.workers, pin_memory=device.type == "cuda")
    _reference_epoch(net, optimizer, loader, device)  # warm-up: cuDNN autotuning, allocator
    return fastest([_reference_epoch(net, optimizer, loader, device) for _ in range(scale.timed_epochs)])


def fastest(epochs: list[Epoch]) -> Epoch:
    return Epoch(min(e.seconds for e in epochs), max(e.peak_bytes for e in epochs))


def _reference_epoch(net, optimizer, loader, device: torch.device) -> Epoch:
    meter = memory.SavedTensorMeter()
    memory.reset_peak(device)
    seen = loss_sum = correct = 0
    start = time.perf_counter()
    with meter.track() if device.type == "cpu" else nullcontext():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad()
            out = net.train_step(x, y)
            optimizer.step()
            # the released code's running meters: a host read (a device sync) per batch
            loss_sum += out.loss.item() * len(y)
            correct += out.correct.item()
            seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = memory.peak_cuda_bytes(device) if device.type == "cuda" else meter.peak
    return Epoch(seconds, peak)


# ------------------------------------------------------------------------ (b) fast path


def device_bundle(images_hwc: np.ndarray, labels: np.ndarray, scale: Scale, device: torch.device) -> DataBundle:
    """The images resident on the device as the Trainer's data, CIFAR-10's augmentation."""
    images = torch.from_numpy(images_hwc).permute(0, 3, 1, 2).contiguous().to(device)
    targets = torch.from_numpy(labels).to(device)
    norm = dict(mean=CIFAR.mean, std=CIFAR.std)
    train = DeviceLoader(images, targets, batch_size=scale.batch, shuffle=True,
                         drop_last=drop_last_for_training(len(targets), scale.batch),
                         augmentation=CIFAR.augmentation, seed=0, **norm)
    test = DeviceLoader(images[:scale.batch], targets[:scale.batch], batch_size=scale.batch, **norm)
    info = DataInfo(name="random CIFAR-shaped", num_classes=10, channels=3, image_size=32, mean=CIFAR.mean,
                    std=CIFAR.std, train_size=len(targets), val_size=0, test_size=test.num_examples)
    return DataBundle(info=info, train=train, val=None, test=test)


def fast_network(model: str, depth: int, rule: str, device: torch.device, *, compiled: bool):
    """(network, optimiser, input memory format) with the fast path's switches applied."""
    net, optimizer = network(model, depth, rule, device)
    switches = {k: v for k, v in FAST_PATH.items() if k != "cudnn_benchmark"}  # set by network()
    net, memory_format = apply_fast_path(net, device, compile=compiled, **switches)
    return net, optimizer, memory_format


def fast_epoch(net, optimizer, memory_format, loader, device: torch.device, epoch: int) -> Epoch:
    meter = memory.SavedTensorMeter() if device.type == "cpu" else None
    memory.reset_peak(device)
    loader.set_epoch(epoch)
    run = train_epoch(net, optimizer, loader, device, memory_format=memory_format, meter=meter)
    run.totals.read()  # the Trainer's one host read per epoch
    peak = memory.peak_cuda_bytes(device) if meter is None else meter.peak
    return Epoch(run.seconds, peak)


def fast_epochs(model: str, depth: int, rule: str, bundle: DataBundle, scale: Scale, device: torch.device,
                *, compiled: bool) -> Epoch:
    net, optimizer, memory_format = fast_network(model, depth, rule, device, compiled=compiled)
    # epoch 0 warms up (compilation, autotuning)
    epochs = [fast_epoch(net, optimizer, memory_format, bundle.train, device, epoch)
              for epoch in range(1 + scale.timed_epochs)]
    return fastest(epochs[1:])


def host_syncs_per_step(device: torch.device, scale: Scale) -> float | None:
    """CUDA's own detector (sync debug mode) over a fast-path epoch and its one read of the
    totals, for an epoch of 2 and of 4 steps: syncs that grow with the steps are per-step
    syncs. None on CPU."""
    if device.type != "cuda":
        return None
    counts = []
    for steps in (2, 4):
        images, labels = random_cifar(steps * scale.batch, seed=1)
        bundle = device_bundle(images, labels, scale, device)
        net, optimizer, memory_format = fast_network("resnet32", 2, "auglocal", device, compiled=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                fast_epoch(net, optimizer, memory_format, bundle.train, device, 0)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        counts.append(sum("synchroniz" in str(w.message) for w in caught))
    return (counts[1] - counts[0]) / 2


# ------------------------------------------------------------------------ the table


def measure(scale: Scale, device: torch.device, *, compiled: bool) -> list[dict]:
    images, labels = random_cifar(scale.images)
    bundle = device_bundle(images, labels, scale, device)
    rows = []
    for model, depth in MODELS:
        for rule in RULES:
            reference = reference_epochs(model, depth, rule, images, labels, scale, device)
            fast = fast_epochs(model, depth, rule, bundle, scale, device, compiled=compiled)
            rows.append({"model": model, "aux_depth": depth, "rule": rule,
                         "reference_s": reference.seconds, "fast_s": fast.seconds,
                         "speedup": reference.seconds / fast.seconds,
                         "reference_peak_mib": reference.peak_bytes / 2**20, "fast_peak_mib": fast.peak_bytes / 2**20,
                         "train_flops": training_flops_of(model, depth, rule)})
    return rows


def ratios(rows: list[dict]) -> list[dict]:
    """AugLocal over BP for each model and path, next to their training-FLOPs ratio."""
    out = []
    for model, depth in MODELS:
        bp, al = (next(r for r in rows if r["model"] == model and r["rule"] == rule) for rule in RULES)
        flops = al["train_flops"] / bp["train_flops"]
        out.append({
            "model": model, "aux_depth": depth, "flops_ratio": flops,
            "reference_time_ratio": al["reference_s"] / bp["reference_s"],
            "fast_time_ratio": al["fast_s"] / bp["fast_s"],
            "fast_time_over_flops": al["fast_s"] / bp["fast_s"] / flops,
            "reference_memory_ratio": al["reference_peak_mib"] / bp["reference_peak_mib"],
            "fast_memory_ratio": al["fast_peak_mib"] / bp["fast_peak_mib"],
        })
    return out


def table(scale: Scale, device: torch.device, *, compiled: bool) -> tuple[str, dict]:
    rows = measure(scale, device, compiled=compiled)
    per_model = ratios(rows)
    syncs = host_syncs_per_step(device, scale)
    memory_kind = "GPU max allocated" if device.type == "cuda" else "bytes held for backward"
    fast_settings = ", ".join(f"{k}={v}" for k, v in {**FAST_PATH, "compile": compiled}.items())
    lines = [
        f"One training epoch of {scale.images} random CIFAR-shaped images, batch {scale.batch}; tau=0.5 linear, "
        f"uniform; fastest of {scale.timed_epochs} epochs after a warm-up epoch",
        f"(a) reference: DataLoader + PIL, {scale.workers} workers, float32, per-batch .item()",
        f"(b) fast path: the Trainer's epoch loop, device-resident loader, {fast_settings}",
        "",
        f"| model | d | rule | (a) s/epoch | (b) s/epoch | speed-up (a)/(b) | (a) peak MiB | (b) peak MiB "
        f"({memory_kind}) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['aux_depth']} | {r['rule']} | {r['reference_s']:.2f} | {r['fast_s']:.2f} | "
                     f"{r['speedup']:.2f}x | {r['reference_peak_mib']:.0f} | {r['fast_peak_mib']:.0f} |")
    lines += [
        "",
        "| model | training-FLOPs ratio auglocal/bp | (a) time ratio | (b) time ratio | (b) time ratio / FLOPs ratio "
        "| (a) memory ratio | (b) memory ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in per_model:
        lines.append(f"| {r['model']} | {r['flops_ratio']:.2f} | {r['reference_time_ratio']:.2f} | "
                     f"{r['fast_time_ratio']:.2f} | {r['fast_time_over_flops']:.2f} | "
                     f"{r['reference_memory_ratio']:.3f} | {r['fast_memory_ratio']:.3f} |")
    if syncs is not None:
        lines += ["", f"Host syncs per training step on the fast path (CUDA sync debug mode): {syncs:g}"]
    return "\n".join(lines), {"scale": vars(scale), "fast_path": fast_settings, "rows": rows, "ratios": per_model,
                              "host_syncs_per_step": syncs}


# ------------------------------------------------------------------------ targets (issue 7, on a GPU)

SPEEDUP = 3.0  # (b) at least 3x faster per epoch than (a), for auglocal
MEMORY_RATIO_RESNET110 = 0.5  # auglocal peak / bp peak on the fast path (the paper reports about 0.6)
TIME_OVER_FLOPS = 1.2  # (auglocal time / bp time) / (auglocal training FLOPs / bp's), fast path


def gpu_targets(payload: dict) -> list[tuple[str, bool]]:
    """(label, met) for every target of the GPU table."""
    checks = [(f"{r['model']} auglocal speed-up (a)/(b) {r['speedup']:.2f}x >= {SPEEDUP:g}x", r["speedup"] >= SPEEDUP)
              for r in payload["rows"] if r["rule"] == "auglocal"]
    r110 = next(r for r in payload["ratios"] if r["model"] == "resnet110")
    checks.append((f"resnet110 auglocal/bp peak memory (b) {r110['fast_memory_ratio']:.3f} <= {MEMORY_RATIO_RESNET110}",
                   r110["fast_memory_ratio"] <= MEMORY_RATIO_RESNET110))
    checks += [(f"{r['model']} (b) time ratio / FLOPs ratio {r['fast_time_over_flops']:.2f} <= {TIME_OVER_FLOPS}",
                r["fast_time_over_flops"] <= TIME_OVER_FLOPS) for r in payload["ratios"]]
    if payload["host_syncs_per_step"] is not None:
        syncs = payload["host_syncs_per_step"]
        checks.append((f"host syncs per training step on the fast path {syncs:g} == 0", syncs == 0))
    return checks
