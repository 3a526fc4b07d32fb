"""Study-level per-layer curves for `ablate report`: each cell's linear-probe accuracy and
CKA to its reference, layer by layer, as mean ± std over the seeds that have them."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .. import tracking
from ..files import write_text_atomic
from ..tracking.study_run import cell_name
from .palette import DISTINCT, Layout, palette

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
    order: int = 0  # the cell's place in the study
    factors: dict = field(default_factory=dict)
    colour: str | tuple = "C0"  # the cell's colour in every figure (ablate.report.palette)


def layer_curves(tracking_uri: str, cells: list[tuple[str, str, list[dict]]]) -> list[LayerCurve]:
    """Curves of every LAYER_METRICS metric for `cells` ((cell id, label, its runs)); a
    run without the metric (not analysed) is left out of that cell's mean."""
    curves = []
    factors = {cell_id: (runs[0].factors if runs else {}) for cell_id, _, runs in cells}
    colours = palette(list(factors.items()))
    for metric in LAYER_METRICS:
        for order, (cell_id, label, runs) in enumerate(cells):
            series = [np.array([v for _, v in tracking.metric_history(tracking_uri, run.run_id, metric)])
                      for run in runs if metric in run.metrics]
            series = [s for s in series if len(s)]
            if not series or len({len(s) for s in series}) != 1:
                continue
            stacked = np.stack(series)
            std = stacked.std(0, ddof=1) if len(series) > 1 else np.zeros(stacked.shape[1])
            curves.append(LayerCurve(cell_id, label, metric, stacked.mean(0), std, len(series), order,
                                     factors[cell_id], colours[cell_id]))
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
    layer_figure(curves, ylabel, study).savefig(path, dpi=120)
    return path


def layer_figure(curves: list[LayerCurve], ylabel: str, study: str) -> Figure:
    """One panel, or with many cells one panel per value of a factor (say the decay
    schedule) sharing the y axis; the legend outside the data; n in every label."""
    sets = [c.factors for c in curves]
    layout = Layout.of(sets, many=len(curves) > DISTINCT)
    panels = layout.panels(sets)
    spread = "mean ± std over seeds" if any(c.n > 1 for c in curves) else "one seed each"
    fig = Figure(figsize=(9.0, 4.2) if len(panels) == 1 else (min(5.2 * len(panels), 16), 5.0), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, value in zip(axes, panels):
        mine = [c for c in curves if layout.in_panel(c.factors, value)]
        for curve in mine:
            layers = np.arange(len(curve.mean))
            shared = layout.panel is not None and layout.panel not in curve.factors  # drawn in every panel
            label = _short_label(curve, layout) + f" (n={curve.n})"
            ax.plot(layers, curve.mean, marker="o", markersize=2.5, color=curve.colour,
                    linestyle=":" if shared else layout.linestyle(curve.factors, sets), linewidth=1.4, label=label)
            if curve.n > 1:
                ax.fill_between(layers, curve.mean - curve.std, curve.mean + curve.std, color=curve.colour, alpha=0.15)
        ax.set_xlabel("layer (last = output)")
        ax.grid(alpha=0.3)
        if value is not None:
            ax.set_title(f"{layout.panel}={value}", fontsize="small")
        beside = len(panels) == 1  # one panel: the legend to its right; several: each under its own
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0) if beside else (0.0, -0.16),
                  ncol=1 if beside or len(mine) < 6 else 2, frameon=False)
    axes[0].set_ylabel(ylabel)
    low = min(float(np.min(c.mean - c.std)) for c in curves)
    axes[0].set_ylim(max(0.0, low - 0.05), 1.02)  # the range the curves use: differences of 0.01 show
    fig.suptitle(f"{study}: {ylabel}, {spread}", fontsize="small")
    return fig


def _short_label(curve: LayerCurve, layout: Layout) -> str:
    """The cell's label without the panel's factor (the panel title says it)."""
    shown = {k: v for k, v in curve.factors.items() if k != layout.panel}
    return cell_name(shown, "") if shown else curve.label
