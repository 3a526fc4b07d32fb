"""`make bench` (python -m benchmarks): every benchmark, side by side, on this machine.

Prints markdown tables (paste them into benchmarks/README.md with the date and machine)
and checks each target; exits 1 if one is missed.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from . import cka, loader, local_vs_bp
from .machine import describe_machine, pick_device

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
    parser.add_argument("--cka-sizes", default="10000,50000", help="n of the streaming-only CKA runs")
    parser.add_argument("--json-out", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)

    print(describe_machine(device), "\n", flush=True)
    text, rows = local_vs_bp.table(("resnet32", "resnet110"), batch=args.batch, repeats=args.repeats, device=device)
    print(text, "\n", flush=True)
    loader_text, loader_row = loader.table(num_images=args.loader_images, batch=args.batch, workers=2,
                                           device=device)
    print(loader_text, "\n", flush=True)
    cka_text, cka_rows = cka.table(device, tuple(int(n) for n in args.cka_sizes.split(",")))
    print(cka_text, "\n", flush=True)

    missed = []
    if device.type == "cpu":
        r110 = next(r for r in rows if r["model"] == "resnet110")
        checks = [(f"resnet110 memory ratio {r110['memory_ratio']:.3f} <= {CPU_MEMORY_RATIO_RESNET110}",
                   r110["memory_ratio"] <= CPU_MEMORY_RATIO_RESNET110)]
        checks += [(f"{r['model']} time ratio / FLOPs ratio {r['time_over_flops']:.2f} <= {CPU_TIME_OVER_FLOPS}",
                    r["time_over_flops"] <= CPU_TIME_OVER_FLOPS) for r in rows]
        for label, ok in checks:
            print(("met:    " if ok else "MISSED: ") + label)
            if not ok:
                missed.append(label)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"machine": describe_machine(device), "local_vs_bp": rows, "loader": loader_row,
                       "cka": cka_rows}, f, indent=2)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
