"""(g) The memory meter's cost: one CPU training epoch with the saved-tensor meter on every
step (the loop before issue 16) against the meter on the first step of the epoch only
(the loop now), interleaved epoch by epoch on two copies of one network, float32 (the
shipped CPU studies' precision), random CIFAR-shaped images on the device-resident loader.
Epoch time is the whole epoch, metered step included; the fastest of `repeats` epochs
after a warm-up epoch counts.
"""

from __future__ import annotations

import torch

from ablate.engine import memory
from ablate.engine.loop import train_epoch

from .epoch_time import Scale, device_bundle, network, random_cifar

CASES = (("resnet32", 2, "auglocal"), ("resnet32", 2, "bp"))
IMAGES, BATCH = 512, 64  # 8 steps an epoch: the one metered step is 1/8 of it
SPEEDUP = 1.2  # AugLocal epoch, meter on one step over meter on every step


def measure(repeats: int = 2) -> list[dict]:
    device = torch.device("cpu")
    images, labels = random_cifar(IMAGES)
    scale = Scale(images=IMAGES, batch=BATCH, workers=0)
    rows = []
    for model, depth, rule in CASES:
        loader = device_bundle(images, labels, scale, device).train
        # the same network (seed 0) twice
        variants = {"every step": (*network(model, depth, rule, device), None),
                    "first step": (*network(model, depth, rule, device), 1)}
        seconds = {name: [] for name in variants}
        peaks = {}
        for epoch in range(1 + repeats):
            for name, (n, opt, metered) in variants.items():
                meter = memory.SavedTensorMeter()
                loader.set_epoch(epoch)
                run = train_epoch(n, opt, loader, device, memory_format=torch.contiguous_format, meter=meter,
                                  metered_steps=metered)
                if epoch:  # epoch 0 warms up
                    seconds[name].append(run.seconds)
                peaks[name] = meter.peak
        every, first = min(seconds["every step"]), min(seconds["first step"])
        rows.append({"model": model, "aux_depth": depth, "rule": rule, "every_step_s": every, "first_step_s": first,
                     "speedup": every / first, "every_step_peak_mib": peaks["every step"] / 2**20,
                     "first_step_peak_mib": peaks["first step"] / 2**20})
    return rows


def table(repeats: int = 2) -> tuple[str, list[dict]]:
    rows = measure(repeats)
    lines = [f"CPU epoch of {IMAGES} random CIFAR-shaped images, batch {BATCH}, float32; meter on every step "
             f"(the loop before) vs on the first step only (now); fastest of {repeats} interleaved epochs",
             "",
             "| model | d | rule | meter every step s/epoch | meter first step s/epoch | speed-up | "
             "peak MiB (every / first) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['aux_depth']} | {r['rule']} | {r['every_step_s']:.2f} | "
                     f"{r['first_step_s']:.2f} | {r['speedup']:.2f}x | {r['every_step_peak_mib']:.1f} / "
                     f"{r['first_step_peak_mib']:.1f} |")
    return "\n".join(lines), rows


def targets(rows: list[dict]) -> list[tuple[str, bool]]:
    return [(f"{r['model']} auglocal epoch, meter off the hot path: {r['speedup']:.2f}x >= {SPEEDUP}x",
             r["speedup"] >= SPEEDUP) for r in rows if r["rule"] == "auglocal"]
