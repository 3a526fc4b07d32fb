"""Study-level per-layer curves for `ablate report`: each cell's linear-probe accuracy and
CKA to its reference, layer by layer, as mean ± std over the seeds that have them."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from .. import tracking
from ..files import write_text_atomic

LAYER_METRICS = {
    "probe_acc": ("linear probe test accuracy", "probe_accuracy_per_layer.png"),
    "cka_to_ref": ("linear CKA to the reference (same layer)", "cka_to_reference_per_layer.png"),
}


@dataclass(frozen=True)
class LayerCurve:
    cell_id: str
    label: str
    metric: str
    mean: np.ndarray  # per representation (last = output)
    std: np.ndarray  # sample std over seeds (0 with one seed)
    n: int  # seeds averaged
    order: int = 0  # the cell's place in the study, so a cell has one colour in every figure


def layer_curves(tracking_uri: str, cells: list[tuple[str, str, list[dict]]]) -> list[LayerCurve]:
    """Curves of every LAYER_METRICS metric for `cells` ((cell id, label, its runs)); a
    run without the metric (not analysed) is left out of that cell's mean."""
    curves = []
    for metric in LAYER_METRICS:
        for order, (cell_id, label, runs) in enumerate(cells):
            series = [np.array([v for _, v in tracking.metric_history(tracking_uri, run.run_id, metric)])
                      for run in runs if metric in run.metrics]
            series = [s for s in series if len(s)]
            if not series or len({len(s) for s in series}) != 1:
                continue
            stacked = np.stack(series)
            std = stacked.std(0, ddof=1) if len(series) > 1 else np.zeros(stacked.shape[1])
            curves.append(LayerCurve(cell_id, label, metric, stacked.mean(0), std, len(series), order))
    return curves


def write_layer_curves(curves: list[LayerCurve], out_dir: Path, study: str) -> list[tuple[str, Path]]:
    """A figure per metric that has curves, and layer_curves.csv; (title, path) pairs."""
    if not curves:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for metric, (ylabel, name) in LAYER_METRICS.items():
        mine = [c for c in curves if c.metric == metric]
        if mine:
            written.append((f"{study}: {ylabel}", _plot(mine, out_dir / name, ylabel, study)))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["cell_id", "cell", "metric", "layer", "mean", "std", "n"])
    for c in curves:
        for layer, (mean, std) in enumerate(zip(c.mean, c.std)):
            writer.writerow([c.cell_id, c.label, c.metric, layer, f"{mean:.6g}", f"{std:.6g}", c.n])
    write_text_atomic(out_dir / "layer_curves.csv", buffer.getvalue())
    return written + [("per-layer values", out_dir / "layer_curves.csv")]


def _plot(curves: list[LayerCurve], path: Path, ylabel: str, study: str) -> Path:
    many = len(curves) > 8  # legend beside the axes; colours along the study's cell order
    cells = max(c.order for c in curves) + 1
    fig = Figure(figsize=(11.5 if many else 7.2, 4.4 + (0.12 * len(curves) - 1 if many else 0)),
                 layout="constrained")
    ax = fig.subplots()
    for curve in curves:
        layers = np.arange(len(curve.mean))
        color = colormaps["viridis"](curve.order / max(cells - 1, 1)) if cells > 10 else f"C{curve.order}"
        ax.plot(layers, curve.mean, marker="o", markersize=3, color=color, label=f"{curve.label} (n={curve.n})")
        ax.fill_between(layers, curve.mean - curve.std, curve.mean + curve.std, color=color, alpha=0.2)
    ax.set_xlabel("layer (last = output)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{study}: {ylabel}, mean ± std over seeds", fontsize="small")
    ax.grid(alpha=0.3)
    if many:
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize="x-small")
    fig.savefig(path, dpi=120)
    return path
