"""(f) All-pairs linear CKA between two ResNet-110 networks (56 representations each: 55
layers and the output), streaming (MinibatchCKA, batches of 500) against the full n × n
Gram path (every representation's centered Gram matrix held at once, debiased), at
n = 2,000 side by side; then the streaming path alone at n = 10,000 and 50,000.

Each measurement runs in a fresh process so that its peak memory is its own: CUDA
max_memory_allocated, or on the CPU the growth of peak RSS over the process's RSS with
both networks built. Features are global-average pooled; inputs are a seeded stream of
random CIFAR-shaped images, generated batch by batch (the networks are untrained: the
cost does not depend on the weights). On a CPU the networks run at width 0.25 on 16×16
inputs, so that the forwards do not swamp the estimator being measured; the number of
representations (56) and of examples are the benchmark's and unchanged.
"""

from __future__ import annotations

import multiprocessing
import resource
import time

import psutil
import torch

from ablate.analysis.cka import MinibatchCKA, cka_matrix
from ablate.analysis.features import feature_batches, representation_names
from ablate.engine import build_network

BATCH = 500


def _networks(device: torch.device, width: float, image_size: int):
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        nets.append(build_network(model="resnet110", rule="bp", aux_depth=1, selection="uniform", decay="constant",
                                  decay_coeff=0.5, head_layers=None, seed=seed, width=width, in_channels=3,
                                  num_classes=10, image_size=image_size).to(device).eval())
    return nets


def _images(n: int, image_size: int):
    generator = torch.Generator().manual_seed(0)
    for start in range(0, n, BATCH):
        yield torch.randn(min(BATCH, n - start), 3, image_size, image_size, generator=generator)


def _measure(path: str, n: int, device_name: str, width: float, image_size: int, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    first, second = _networks(device, width, image_size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = psutil.Process().memory_info().rss
    count = len(representation_names(first))  # 55 layers and the output
    start = time.perf_counter()
    if path == "streaming":
        cka = MinibatchCKA(count, count)
        for x in _images(n, image_size):
            a = next(feature_batches(first, x, "gap", BATCH, device))
            b = next(feature_batches(second, x, "gap", BATCH, device))
            cka.update(a, b)
        matrix = cka.compute()
    else:
        per_batch = [(next(feature_batches(first, x, "gap", BATCH, device)),
                      next(feature_batches(second, x, "gap", BATCH, device))) for x in _images(n, image_size)]
        features_a = [torch.cat([batch[0][i] for batch in per_batch]) for i in range(count)]
        features_b = [torch.cat([batch[1][i] for batch in per_batch]) for i in range(count)]
        del per_batch
        matrix = cka_matrix(features_a, features_b, debiased=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    queue.put({"path": path, "n": n, "seconds": time.perf_counter() - start, "peak_bytes": max(peak, 0),
               "shape": list(matrix.shape)})


def measure(path: str, n: int, device: torch.device, width: float, image_size: int) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_measure, args=(path, n, str(device), width, image_size, torch.get_num_threads(), queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def table(device: torch.device, sizes: tuple[int, ...] = (10_000, 50_000)) -> tuple[str, list[dict]]:
    width, image_size = (1.0, 32) if device.type == "cuda" else (0.25, 16)
    rows = [measure("full Gram (debiased)", 2000, device, width, image_size),
            measure("streaming", 2000, device, width, image_size)]
    rows += [measure("streaming", n, device, width, image_size) for n in sizes]
    shape = " × ".join(map(str, rows[0]["shape"]))
    lines = [f"all-pairs CKA, resnet110 × resnet110 ({shape} representations, gap), width {width}, "
             f"{image_size}×{image_size} inputs, batch {BATCH}",
             "",
             "| path | n | seconds | peak memory MiB |",
             "|---|---:|---:|---:|"]
    lines += [f"| {r['path']} | {r['n']:,} | {r['seconds']:.1f} | {r['peak_bytes'] / 2**20:.0f} |" for r in rows]
    full, streamed = rows[0], rows[1]
    lines += ["", f"at n = 2,000 the streaming path takes {streamed['seconds'] / full['seconds']:.2f}× the time "
                  f"and {streamed['peak_bytes'] / max(full['peak_bytes'], 1):.3f}× the peak memory of the full path"]
    return "\n".join(lines), rows
