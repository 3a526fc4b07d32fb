"""(e) Overlapping local learning's two halves on a GPU.

Local layer i's auxiliary net reads only layer i's output, and layer i+1 reads only that
output detached, so the auxiliary forward and backward of layer i need not wait for, nor
hold up, the forward of layer i+1. The overlapped step launches each auxiliary net on a
side CUDA stream as soon as its input is ready and back-propagates its loss one layer
later, after the next layer's forward has been queued on the main stream:

    main stream:  layer i fwd | layer i+1 fwd | layer i bwd    | layer i+2 fwd | ...
    side stream:        aux i fwd | aux i bwd |  aux i+1 fwd   | aux i+1 bwd   | ...

Autograd runs each backward op on the stream of its forward op and synchronises the two
where a gradient crosses them. The experiment checks that the overlapped step gives the
plain step's gradients, times both (median of interleaved steps, fast-path precision),
and says whether the overlap helps; the engine keeps the plain step unless it does.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
import torch.nn.functional as F

from ablate.engine import LocalNetwork, build_network

from .epoch_time import MODELS, PLAN

HELPS = 0.95  # kept only if the overlapped step takes at most 95% of the plain step's time


def overlapped_step(net: LocalNetwork, x: torch.Tensor, y: torch.Tensor, side: torch.cuda.Stream) -> None:
    """The plain step's forward and backward, each auxiliary net on `side` (see above)."""
    if any(head.needs_image for head in net.aux_heads):
        raise ValueError("the overlap experiment covers auxiliary nets that read no image")
    main = torch.cuda.current_stream(x.device)
    layers = net.backbone.layers
    y.record_stream(side)
    pending = None  # the previous local loss, back-propagated once the next layer is queued
    h = x
    for i in range(net.num_local):
        h = layers[i](h)
        ready = torch.cuda.Event()
        ready.record(main)
        if pending is not None:
            pending.backward()
        side.wait_event(ready)
        with torch.cuda.stream(side):
            pending, _ = net.aux_heads[i](h, y, None)
        h.record_stream(side)  # allocated on main, read on side: not reused before side is done
        h = h.detach()
    for layer in layers[net.num_local:]:
        h = layer(h)
    loss = F.cross_entropy(net.backbone.head(h).float(), y)
    if pending is not None:
        pending.backward()
    loss.backward()
    # The optimiser step reads gradients written on side; since the auxiliary nets'
    # gradients were allocated there, callers synchronise before freeing them (zero_grad).
    main.wait_stream(side)


def _plain_step(net, x, y, side):
    net.train_step(x, y)


def _network(model: str, depth: int, device: torch.device) -> LocalNetwork:
    torch.manual_seed(0)
    net = build_network(model=model, rule="auglocal", aux_depth=depth, head_layers=None, seed=0, in_channels=3,
                        num_classes=10, image_size=32, **PLAN)
    return net.to(device).to(memory_format=torch.channels_last).train()


def same_gradients(model: str, depth: int, device: torch.device, batch: int) -> bool:
    """One step of each from the same weights and batch, float32 and deterministic kernels."""
    flags = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        plain = _network(model, depth, device)
        overlapped = copy.deepcopy(plain)
        x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (batch,), device=device)
        side = torch.cuda.Stream(device)
        plain.train_step(x, y)
        overlapped_step(overlapped, x, y, side)
        torch.cuda.synchronize(device)
        return all(torch.allclose(p.grad, q.grad, rtol=1e-3, atol=1e-5)
                   for p, q in zip(plain.parameters(), overlapped.parameters()))
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = flags


def step_times(model: str, depth: int, device: torch.device, batch: int, repeats: int) -> dict[str, float]:
    """Median seconds per step (forward, backwards, optimiser) of both schedules, interleaved."""
    torch.backends.cudnn.benchmark = True
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    side = torch.cuda.Stream(device)
    runs = {}
    for name, step in (("plain", _plain_step), ("overlapped", overlapped_step)):
        net = _network(model, depth, device)
        runs[name] = (net, torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9), step)
    times = {name: [] for name in runs}
    for i in range(repeats + 2):  # two warm-up rounds: autotuning, allocator
        for name, (net, optimizer, step) in runs.items():
            torch.cuda.synchronize(device)
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                step(net, x, y, side)
            optimizer.step()
            torch.cuda.synchronize(device)
            if i >= 2:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def table(device: torch.device, *, batch: int, repeats: int) -> tuple[str, list[dict]]:
    if device.type != "cuda":
        return ("Overlap of auxiliary nets with the next layer (CUDA streams): needs a CUDA device; "
                "not measured on this machine."), []
    rows = []
    for model, depth in MODELS:
        correct = same_gradients(model, depth, device, batch)
        t = step_times(model, depth, device, batch, repeats)
        rows.append({"model": model, "aux_depth": depth, "same_gradients": correct,
                     "plain_step_s": t["plain"], "overlapped_step_s": t["overlapped"],
                     "ratio": t["overlapped"] / t["plain"],
                     "helps": correct and t["overlapped"] <= HELPS * t["plain"]})
    lines = [f"Overlap of auxiliary nets with the next layer (CUDA streams), auglocal, batch {batch}, bf16, "
             f"channels-last, median of {repeats} steps",
             "",
             "| model | d | same gradients | plain step s | overlapped step s | overlapped / plain | helps |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['aux_depth']} | {'yes' if r['same_gradients'] else 'NO'} | "
                     f"{r['plain_step_s']:.4f} | {r['overlapped_step_s']:.4f} | {r['ratio']:.3f} | "
                     f"{'yes' if r['helps'] else 'no'} |")
    verdict = ("the overlap helps: worth moving into the engine" if all(r["helps"] for r in rows)
               else f"the overlap does not help by {100 * (1 - HELPS):.0f}% or more everywhere: the engine keeps "
                    "the plain step")
    return "\n".join(lines + ["", f"Verdict: {verdict}."]), rows
