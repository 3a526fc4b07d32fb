"""(h) The CPU fast path, measured: the quickstart study's settings (studies/quickstart.yaml)
trained under float32 and under each fast-path switch (bf16 autocast, channels-last, both,
torch.compile), every variant on the same seeds, in one run. Epoch time is the mean of the
epochs after the first (which compiles, for compile); accuracy is the final test accuracy,
averaged over the seeds. A variant keeps accuracy when its mean is within three standard
errors of a test accuracy (sqrt(p (1 - p) / n), n the test images of all seeds) of
float32's mean: the spread two equally good runs show on the same images.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import yaml

from ablate.config import TrainConfig
from ablate.engine import Trainer

QUICKSTART = Path(__file__).resolve().parent.parent / "studies" / "quickstart.yaml"
RULES = ({"rule": "auglocal", "aux_depth": 3}, {"rule": "bp"})
VARIANTS = {
    "float32": {},
    "bf16": {"bf16": True},
    "channels_last": {"channels_last": True},
    "bf16 + channels_last": {"bf16": True, "channels_last": True},
    "compile": {"compile": True},
}
# inductor compiles each unit's C++ for minutes on a small CPU (longer than the trial it
# would speed up): measured on request (--fast-path-variants float32,compile)
DEFAULT_VARIANTS = tuple(name for name in VARIANTS if name != "compile")


def quickstart_settings() -> dict:
    return yaml.safe_load(QUICKSTART.read_text())["settings"]


def _train(settings: dict, seed: int) -> tuple[float, float, int]:
    """(mean epoch time after the first, final test accuracy, test images)."""
    result = Trainer(TrainConfig(**settings, seed=seed)).fit()
    if result["status"] != "finished":
        raise RuntimeError(f"{settings}: {result['message']}")
    times = [m["epoch_time_s"] for m in result["history"][1:]]
    return sum(times) / len(times), result["final"]["test_acc"], result["data"]["test_size"]


def measure(seeds: tuple[int, ...] = (0, 1), variants: tuple[str, ...] = DEFAULT_VARIANTS) -> list[dict]:
    base = quickstart_settings()
    rows = []
    for rule in RULES:
        runs = {name: [] for name in variants}
        for seed in seeds:  # seed-major: a load spike on a shared machine hits every variant alike
            for name in variants:
                runs[name].append(_train({**base, **rule, **VARIANTS[name]}, seed))
        for name in variants:
            times, accs, sizes = zip(*runs[name])
            rows.append({"rule": rule["rule"], "variant": name, "epoch_s": sum(times) / len(times),
                         "test_acc": sum(accs) / len(accs), "test_images": sum(sizes)})
    for row in rows:
        f32 = next(r for r in rows if r["rule"] == row["rule"] and r["variant"] == "float32")
        p = f32["test_acc"]
        row["speedup"] = f32["epoch_s"] / row["epoch_s"]
        row["acc_noise"] = 3 * math.sqrt(p * (1 - p) / f32["test_images"])
        row["acc_holds"] = abs(row["test_acc"] - p) <= row["acc_noise"]
    return rows


def fastest_holding_accuracy(rows: list[dict]) -> str:
    """The variant faster than float32 under every rule whose accuracy holds under every
    rule, fastest by its slowest rule's speed-up; float32 when none is."""
    names = {r["variant"] for r in rows}
    good = {n: min(r["speedup"] for r in rows if r["variant"] == n) for n in names
            if all(r["acc_holds"] and r["speedup"] > 1 for r in rows if r["variant"] == n)}
    return max(good, key=good.get) if good else "float32"


def table(seeds: tuple[int, ...] = (0, 1), variants: tuple[str, ...] = DEFAULT_VARIANTS) -> tuple[str, dict]:
    rows = measure(seeds, variants)
    best = fastest_holding_accuracy(rows)
    settings = quickstart_settings()
    lines = [f"The quickstart's settings ({settings['model']} width {settings['width']}, {settings['dataset']}, "
             f"batch {settings['batch_size']}, {settings['epochs']} epochs), seeds {list(seeds)}; "
             f"bf16 on this CPU: {torch.backends.cpu.get_cpu_capability()}",
             "",
             "| rule | variant | s/epoch | speed-up over float32 | test acc | accuracy within noise (±) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['rule']} | {r['variant']} | {r['epoch_s']:.2f} | {r['speedup']:.2f}x | "
                     f"{100 * r['test_acc']:.1f}% | {'yes' if r['acc_holds'] else 'NO'} "
                     f"(±{100 * r['acc_noise']:.1f}) |")
    lines += ["", f"Fastest variant that keeps accuracy under every rule: {best}"]
    return "\n".join(lines), {"rows": rows, "fastest": best}
