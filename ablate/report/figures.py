"""The report's figures: accuracy against auxiliary depth, and against peak memory."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from .summary import COMPARED, MEMORY, CellSummary, Column, Report, cell_label


def _mean_std(cell: CellSummary, col: Column) -> tuple[float, float] | None:
    stat = cell.stats[col.name]
    return None if stat is None else (stat.mean, stat.std or 0.0)


def plot_accuracy_vs_aux_depth(report: Report, out_dir: Path) -> Path | None:
    """Final test accuracy against auxiliary depth, one line per combination of the
    other factors (schedule, strategy, …); cells without a depth (e.g. bp) as dashed
    horizontal lines. None when aux_depth is not a factor of the study."""
    with_depth = [c for c in report.cells if "aux_depth" in c.factors and _mean_std(c, COMPARED)]
    if not with_depth:
        return None
    lines: dict[str, list[CellSummary]] = {}
    for cell in with_depth:
        others = {k: v for k, v in cell.factors.items() if k != "aux_depth"}
        lines.setdefault(cell_label(others, "") or "all cells", []).append(cell)
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for i, (label, cells) in enumerate(lines.items()):
        cells = sorted(cells, key=lambda c: c.factors["aux_depth"])
        ms = [_mean_std(c, COMPARED) for c in cells]
        dodge = 0.05 * (i - (len(lines) - 1) / 2)  # error bars of lines at one depth side by side
        ax.errorbar([c.factors["aux_depth"] + dodge for c in cells], [m for m, _ in ms], yerr=[s for _, s in ms],
                    marker="o", capsize=3, label=label)
    for cell in report.cells:
        if "aux_depth" not in cell.factors and _mean_std(cell, COMPARED):
            ax.axhline(_mean_std(cell, COMPARED)[0], linestyle="--", color="gray", label=cell.label)
    depths = sorted({c.factors["aux_depth"] for c in with_depth})
    ax.set_xticks(depths)
    ax.set_xlabel("auxiliary depth d")
    ax.set_ylabel(f"{COMPARED.title}, mean ± std over seeds")
    ax.set_title(f"{report.study}: accuracy against auxiliary depth")
    ax.legend(fontsize="small")
    path = out_dir / "accuracy_vs_aux_depth.png"
    fig.savefig(path, dpi=120)
    return path


def plot_accuracy_vs_memory(report: Report, out_dir: Path) -> Path | None:
    """Final test accuracy against peak memory, one point per cell with std bars."""
    cells = [c for c in report.cells if _mean_std(c, COMPARED) and _mean_std(c, MEMORY)]
    if not cells:
        return None
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for cell in cells:
        (acc, acc_std), (mem, mem_std) = _mean_std(cell, COMPARED), _mean_std(cell, MEMORY)
        ax.errorbar(mem, acc, xerr=mem_std, yerr=acc_std, marker="o", capsize=3, linestyle="none")
        ax.annotate(cell.label, (mem, acc), textcoords="offset points", xytext=(4, 4), fontsize="x-small")
    ax.margins(x=0.15)  # room for the labels of the outermost points
    ax.set_xlabel(f"{MEMORY.title}, mean ± std over seeds")
    ax.set_ylabel(f"{COMPARED.title}, mean ± std over seeds")
    ax.set_title(f"{report.study}: accuracy against peak memory")
    path = out_dir / "accuracy_vs_peak_memory.png"
    fig.savefig(path, dpi=120)
    return path
