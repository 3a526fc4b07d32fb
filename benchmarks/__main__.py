"""`make bench` (python -m benchmarks): every benchmark, side by side, on this machine.

Prints markdown tables (paste them into benchmarks/README.md with the date and machine)
and checks each target; exits 1 if one is missed. Each section's module is imported only
when it runs: the GPU sections (`make bench-gpu`: memory, epoch, overlap) import neither
optuna, mlflow nor pydantic, so they run on a bare GPU machine with torch and torchvision.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from .machine import describe_machine, load_average, pick_device

SECTIONS = ("memory", "loader", "epoch", "overlap", "cka", "validation", "meter", "cpu-fast", "study")

# targets on the ratios (issue: training and first benchmarks)
CPU_MEMORY_RATIO_RESNET110 = 0.25  # auglocal bytes held for backward / bp's
CPU_TIME_OVER_FLOPS = 1.15  # (auglocal step time / bp's) / (auglocal training FLOPs / bp's)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per rule")
    parser.add_argument("--loader-images", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads [default: torch's]")
    parser.add_argument("--epoch-images", type=int, default=None,
                        help="(d) images per timed epoch [default: 50000 on a GPU, 256 on a CPU]")
    parser.add_argument("--epoch-batch", type=int, default=None, help="(d) batch [default: 1024 on a GPU, 64 on a CPU]")
    parser.add_argument("--epoch-repeats", type=int, default=2,
                        help="(d) timed epochs after the warm-up; the fastest counts")
    parser.add_argument("--compile", action="store_true",
                        help="(d) fast path with torch.compile (on a CPU, inductor compiles for many minutes)")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    parser.add_argument("--cka-sizes", default="10000,50000", help="(f) n of the streaming-only CKA runs")
    parser.add_argument("--fast-path-seeds", default="0,1", help="(h) seeds of each CPU fast-path variant")
    parser.add_argument("--fast-path-variants", default=None,
                        help="(h) comma-separated variants to train, float32 first [default: all but compile]")
    parser.add_argument("--json-out", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    sections = args.only or SECTIONS

    print(describe_machine(device), "·", load_average(), "\n", flush=True)
    figures: dict = {"machine": describe_machine(device)}
    missed = []
    if "memory" in sections:
        from . import local_vs_bp

        text, rows = local_vs_bp.table(("resnet32", "resnet110"), batch=args.batch, repeats=args.repeats,
                                       device=device)
        print(text, "\n", flush=True)
        figures["local_vs_bp"] = rows
        if device.type == "cpu":
            missed += _report(_cpu_memory_and_time_checks(rows))
    if "loader" in sections:
        from . import loader

        loader_text, figures["loader"] = loader.table(num_images=args.loader_images, batch=args.batch, workers=2,
                                                      device=device)
        print(loader_text, "\n", flush=True)
    if "epoch" in sections:
        from . import epoch_time

        default = epoch_time.GPU_SCALE if device.type == "cuda" else epoch_time.CPU_SCALE
        scale = epoch_time.Scale(images=args.epoch_images or default.images, batch=args.epoch_batch or default.batch,
                                 workers=default.workers, timed_epochs=args.epoch_repeats)
        if device.type == "cpu":
            print(f"No GPU: epoch benchmark at CPU scale ({scale.images} images, batch {scale.batch}); "
                  "its targets are GPU targets and are not checked here.\n", flush=True)
        text, figures["epoch"] = epoch_time.table(scale, device, compiled=args.compile)
        print(text, "\n", flush=True)
        if device.type == "cuda":
            missed += _report(epoch_time.gpu_targets(figures["epoch"]))
    if "overlap" in sections:
        from . import epoch_time, overlap

        text, figures["overlap"] = overlap.table(device, batch=epoch_time.GPU_SCALE.batch, repeats=args.repeats)
        print(text, "\n", flush=True)
    if "cka" in sections:
        from . import cka

        text, figures["cka"] = cka.table(device, tuple(int(n) for n in args.cka_sizes.split(",")))
        print(text, "\n", flush=True)
    if "validation" in sections:
        from . import validation  # reads study files: pydantic, which a bench-gpu machine lacks

        text, figures["validation"] = validation.table()
        print(text, "\n", flush=True)

    if "meter" in sections:
        if device.type == "cpu":
            from . import meter

            text, figures["meter"] = meter.table(args.epoch_repeats)
            print(text, "\n", flush=True)
            missed += _report(meter.targets(figures["meter"]))
        else:
            print("(g) meter: CPU only (CUDA's peak comes from the allocator, no hook runs); skipped\n", flush=True)
    if "cpu-fast" in sections:
        if device.type == "cpu":
            from . import cpu_fast_path

            variants = args.fast_path_variants.split(",") if args.fast_path_variants else cpu_fast_path.DEFAULT_VARIANTS
            text, figures["cpu_fast_path"] = cpu_fast_path.table(
                tuple(int(s) for s in args.fast_path_seeds.split(",")), tuple(variants))
            print(text, "\n", flush=True)
        else:
            print("(h) CPU fast path: CPU only; skipped\n", flush=True)
    if "study" in sections:
        from . import study_overhead

        text, figures["study_overhead"] = study_overhead.table()
        print(text, "\n", flush=True)
        missed += _report(study_overhead.targets(figures["study_overhead"]))
    print(load_average(), flush=True)

    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(figures, f, indent=2)
    return 1 if missed else 0


def _cpu_memory_and_time_checks(rows: list[dict]) -> list[tuple[str, bool]]:
    r110 = next(r for r in rows if r["model"] == "resnet110")
    checks = [(f"resnet110 memory ratio {r110['memory_ratio']:.3f} <= {CPU_MEMORY_RATIO_RESNET110}",
               r110["memory_ratio"] <= CPU_MEMORY_RATIO_RESNET110)]
    return checks + [(f"{r['model']} time ratio / FLOPs ratio {r['time_over_flops']:.2f} <= {CPU_TIME_OVER_FLOPS}",
                      r["time_over_flops"] <= CPU_TIME_OVER_FLOPS) for r in rows]


def _report(checks: list[tuple[str, bool]]) -> list[str]:
    """Prints every check; returns the labels of those missed."""
    for label, ok in checks:
        print(("met:    " if ok else "MISSED: ") + label)
    print(flush=True)
    return [label for label, ok in checks if not ok]


if __name__ == "__main__":
    sys.exit(main())
