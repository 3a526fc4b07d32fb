"""The report's figures: accuracy against auxiliary depth, and against peak memory; each
says its n, which cells have not run, and stays readable with dozens of cells (small
multiples, labels at the lines, a cell's colour from ablate.report.palette)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..tracking.study_run import cell_name
from .palette import DISTINCT, Layout, key, palette
from .summary import COMPARED, MEMORY, CellSummary, Column, Report


def _mean_std(cell: CellSummary, col: Column) -> tuple[float, float] | None:
    stat = cell.stats[col.name]
    return None if stat is None else (stat.mean, stat.std or 0.0)


def _spread_text(cells: list[CellSummary]) -> str:
    return "mean ± std over seeds" if any(len(c.seeds) > 1 for c in cells) else "one seed each"


def _missing_note(fig: Figure, report: Report) -> None:
    """Say which cells have no finished run (rather than leaving them out silently)."""
    missing = [c.label for c in report.cells if not c.seeds]
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        fig.supxlabel(f"not run yet (no finished trial): {shown}", fontsize="x-small", color="0.35")


def plot_accuracy_vs_aux_depth(report: Report, out_dir: Path) -> Path | None:
    """accuracy_vs_aux_depth.png (see `accuracy_vs_aux_depth_figure`); None without aux_depth."""
    fig = accuracy_vs_aux_depth_figure(report)
    if fig is None:
        return None
    path = out_dir / "accuracy_vs_aux_depth.png"
    fig.savefig(path, dpi=120)
    return path


def accuracy_vs_aux_depth_figure(report: Report) -> Figure | None:
    """Final test accuracy against auxiliary depth: one line per combination of the other
    factors, labelled at its end with its n; with many lines, one panel per value of the
    first other factor (schedule, strategy, …). Cells without a depth (e.g. bp) are a
    dashed line in every panel. None when aux_depth is not a factor of the study."""
    with_depth = [c for c in report.cells if "aux_depth" in c.factors and _mean_std(c, COMPARED)]
    if not with_depth:
        return None
    sets = [c.factors for c in with_depth]
    layout = Layout.of(sets, many=len(with_depth) > DISTINCT, axis="aux_depth")
    panels = layout.panels(sets)
    lines: dict[str, list[CellSummary]] = {}
    for cell in with_depth:
        others = {k: v for k, v in cell.factors.items() if k not in ("aux_depth", layout.panel)}
        lines.setdefault(cell_name(others, "") if others else "", []).append(cell)
    cell_colours = palette([(c.cell_id, c.factors) for c in report.cells])
    # a line's colour: its first cell's when every cell has its own (bp, say, is bp's colour in
    # every figure), else one per line, the same in each panel
    few = len(report.cells) <= DISTINCT
    colours = {label: cell_colours[cells[0].cell_id] if few else f"C{i % 10}"
               for i, (label, cells) in enumerate(lines.items())}
    flat = [c for c in report.cells if "aux_depth" not in c.factors and _mean_std(c, COMPARED)]
    fig = Figure(figsize=(7.6, 4.4) if len(panels) == 1 else (min(4.8 * len(panels), 16), 4.6),
                 layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    depths = sorted({c.factors["aux_depth"] for c in with_depth})
    for ax, value in zip(axes, panels):
        for i, (label, cells) in enumerate(lines.items()):
            cells = sorted((c for c in cells if layout.in_panel(c.factors, value)),
                           key=lambda c: c.factors["aux_depth"])
            if not cells:
                continue
            ms = [_mean_std(c, COMPARED) for c in cells]
            dodge = 0.04 * (i - (len(lines) - 1) / 2)  # error bars of lines at one depth side by side
            xs = [c.factors["aux_depth"] + dodge for c in cells]
            ax.errorbar(xs, [m for m, _ in ms], yerr=[s for _, s in ms], marker="o", markersize=4, capsize=3,
                        color=colours[label])
            ns = sorted({len(c.seeds) for c in cells})
            n = f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}–{ns[-1]}"
            ax.annotate(f"{label} ({n})".strip() if label else f"({n})", (xs[-1], ms[-1][0]),
                        textcoords="offset points", xytext=(6, 0), va="center", fontsize="x-small",
                        color=colours[label])
        for cell in flat:
            mean = _mean_std(cell, COMPARED)[0]
            ax.axhline(mean, linestyle="--", color=cell_colours[cell.cell_id], linewidth=1)
            ax.text(0.99, mean, f"{cell_name(cell.factors, cell.cell_id)} (n={len(cell.seeds)}) ", ha="right",
                    va="bottom", fontsize="x-small", color=cell_colours[cell.cell_id],
                    transform=ax.get_yaxis_transform())
        ax.set_xticks(depths)
        ax.set_xlim(depths[0] - 0.3, depths[-1] + 0.3 + 0.35 * (depths[-1] - depths[0] + 1) / 2)  # room for labels
        ax.set_xlabel("auxiliary depth d")
        ax.grid(alpha=0.3)
        if value is not None:
            ax.set_title(f"{layout.panel}={value}", fontsize="small")
    axes[0].set_ylabel(f"{COMPARED.title}, {_spread_text(with_depth)}")
    fig.suptitle(f"{report.study}: accuracy against auxiliary depth", fontsize="medium")
    _missing_note(fig, report)
    return fig


def plot_accuracy_vs_memory(report: Report, out_dir: Path) -> Path | None:
    """Final test accuracy against peak memory, one point per cell with std bars."""
    cells = [c for c in report.cells if _mean_std(c, COMPARED) and _mean_std(c, MEMORY)]
    if not cells:
        return None
    colours = palette([(c.cell_id, c.factors) for c in report.cells])
    fig = Figure(figsize=(7.6, 4.6), layout="constrained")
    ax = fig.subplots()
    for cell in cells:
        (acc, acc_std), (mem, mem_std) = _mean_std(cell, COMPARED), _mean_std(cell, MEMORY)
        ax.errorbar(mem, acc, xerr=mem_std, yerr=acc_std, marker="o", capsize=3, linestyle="none",
                    color=colours[cell.cell_id])
        if len(cells) <= 2 * DISTINCT:  # beyond that the labels would cover each other: the CSV names them
            ax.annotate(f"{cell_name(cell.factors, cell.cell_id)} (n={len(cell.seeds)})", (mem, acc),
                        textcoords="offset points", xytext=(4, 4), fontsize="x-small")
    entries = key([(c.cell_id, c.factors) for c in report.cells])
    if entries:
        handles = [Line2D([], [], marker="o", linestyle="none", color=colour) for _, colour in entries]
        ax.legend(handles, [label for label, _ in entries], fontsize="x-small", loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), frameon=False, title="colour", title_fontsize="x-small")
    ax.margins(x=0.3, y=0.1)  # room for the labels of the outermost points
    ax.grid(alpha=0.3)
    spread = _spread_text(cells)
    ax.set_xlabel(f"{MEMORY.title}, {spread}")
    ax.set_ylabel(f"{COMPARED.title}, {spread}")
    ax.set_title(f"{report.study}: accuracy against peak memory", fontsize="medium")
    _missing_note(fig, report)
    path = out_dir / "accuracy_vs_peak_memory.png"
    fig.savefig(path, dpi=120)
    return path
