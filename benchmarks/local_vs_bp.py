"""AugLocal against BP on the same backbone, measured side by side:

(a) peak memory of one training step — on CUDA `max_memory_allocated` after
    `reset_peak_memory_stats`, on CPU the peak bytes held for backward (saved-tensor
    hooks) — as the ratio auglocal / bp;
(b) step time (forward, local backwards, optimiser step) as the ratio auglocal / bp,
    next to the ratio of their training FLOPs (3 x forward FLOPs of backbone and
    auxiliary nets, counted by torch's FLOP counter) and the quotient of the two:
    a quotient of 1 means AugLocal costs exactly its extra arithmetic.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from ablate.engine import build_network, describe_network, memory, training_flops

AUGLOCAL = dict(rule="auglocal", aux_depth=3, selection="uniform", decay="linear", decay_coeff=0.5)
BP = dict(rule="bp", aux_depth=3, selection="uniform", decay="linear", decay_coeff=0.5)


@dataclass
class Measured:
    peak_bytes: int
    step_times: list[float]
    train_flops: int


def _network(model: str, settings: dict, device: torch.device):
    torch.manual_seed(0)
    net = build_network(model=model, head_layers=None, seed=0, in_channels=3, num_classes=10,
                        image_size=32, **settings)
    flops = training_flops(describe_network(net))
    net = net.to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    return net, opt, flops


def _step(net, opt, x, y):
    opt.zero_grad(set_to_none=True)
    net.train_step(x, y)
    opt.step()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(net, opt, x, y, device) -> int:
    _step(net, opt, x, y)  # optimiser state exists from here on, as in training
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        _step(net, opt, x, y)
        _sync(device)
        return int(torch.cuda.max_memory_allocated(device))
    meter = memory.SavedTensorMeter()
    with meter.track():
        _step(net, opt, x, y)
    return meter.peak


def compare(model: str, *, batch: int, repeats: int, device: torch.device) -> dict[str, Measured]:
    """Both rules on one model; timed steps interleave so that drift hits both alike."""
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    built = {name: _network(model, s, device) for name, s in (("bp", BP), ("auglocal", AUGLOCAL))}
    results = {}
    for name, (net, opt, flops) in built.items():
        results[name] = Measured(peak_memory(net, opt, x, y, device), [], flops)
    for _ in range(repeats):
        for name, (net, opt, _) in built.items():
            _sync(device)
            start = time.perf_counter()
            _step(net, opt, x, y)
            _sync(device)
            results[name].step_times.append(time.perf_counter() - start)
    return results


def table(models: tuple[str, ...], *, batch: int, repeats: int, device: torch.device) -> tuple[str, list[dict]]:
    rows = []
    for model in models:
        r = compare(model, batch=batch, repeats=repeats, device=device)
        bp, al = r["bp"], r["auglocal"]
        t_bp, t_al = statistics.median(bp.step_times), statistics.median(al.step_times)
        flops_ratio = al.train_flops / bp.train_flops
        rows.append({
            "model": model,
            "bp_peak_mib": bp.peak_bytes / 2**20, "auglocal_peak_mib": al.peak_bytes / 2**20,
            "memory_ratio": al.peak_bytes / bp.peak_bytes,
            "bp_step_s": t_bp, "auglocal_step_s": t_al,
            "time_ratio": t_al / t_bp, "flops_ratio": flops_ratio,
            "time_over_flops": (t_al / t_bp) / flops_ratio,
        })
    memory_kind = "GPU max allocated" if device.type == "cuda" else "bytes held for backward"
    lines = [
        f"AugLocal (d=3, tau=0.5, linear, uniform) vs BP · batch {batch} · 3x32x32 · median of {repeats} steps",
        "",
        f"| model | BP peak MiB | AugLocal peak MiB | memory ratio ({memory_kind}) | BP step s | AugLocal step s "
        "| time ratio | training-FLOPs ratio | time ratio / FLOPs ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['bp_peak_mib']:.1f} | {row['auglocal_peak_mib']:.1f} | "
            f"{row['memory_ratio']:.3f} | {row['bp_step_s']:.3f} | {row['auglocal_step_s']:.3f} | "
            f"{row['time_ratio']:.2f} | {row['flops_ratio']:.2f} | {row['time_over_flops']:.2f} |")
    return "\n".join(lines), rows
