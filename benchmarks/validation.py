"""(j) Validating a study file, side by side at two sizes: a study of 1,000 trials and one of
10,000 (ablate's limit), the same two cells with more seeds. Linear validation shows as a
time ratio near the size ratio (10); a 200,000-seed file is refused by the size limit
before it is parsed."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ablate.spec import SpecError, load_study
from ablate.spec.grid import MAX_TRIALS

CELLS = "settings: {dataset: digits, model: resnet20, width: 0.25, device: cpu}\ngrid: {aux_depth: [1, 2]}\n"


def _seconds(path: Path) -> float:
    start = time.perf_counter()
    try:
        load_study(path)
    except SpecError:
        pass
    return time.perf_counter() - start


def table() -> tuple[str, dict]:
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, seeds in (("1,000 trials", 500), (f"{MAX_TRIALS:,} trials", MAX_TRIALS // 2),
                             ("200,000 seeds (refused)", 200_000)):
            path = Path(folder) / "study.yaml"
            path.write_text(CELLS + f"seeds: [{', '.join(map(str, range(seeds)))}]\n")
            rows[label] = _seconds(path)
    small, large = list(rows.values())[:2]
    lines = ["| study | validation (s) |", "|---|---|"] + [f"| {k} | {v:.2f} |" for k, v in rows.items()]
    lines.append(f"\ntime ratio {MAX_TRIALS:,} / 1,000 trials: {large / small:.1f} (linear: 10)")
    return "\n".join(lines), {"seconds": rows, "ratio": large / small}
