"""The effects section as the report shows it: markdown lines, effects.csv, the
main-effects and interaction figures, the AugLocal − BP gap against the budget, and a
search's parameter importances."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from matplotlib.figure import Figure

from ..files import write_text_atomic
from .effects import EFFECT_COLUMNS, Effects
from .effects_budget import Gap, settled_at
from .summary import COMPARED, Report

_TITLES = {c.name: c.title for c in EFFECT_COLUMNS}


def _num(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _p(value) -> str:
    return "—" if value is None else f"{value:.3g}"


def effects_markdown(report: Report) -> list[str]:
    lines = []
    effects: Effects | None = report.effects
    if effects is not None and effects.effects:
        lines += ["", "Effects of each factor (OLS over every trial of the cells where the factor means something, "
                  "the other factors and the seed as blocks; effect = the level minus the factor's first level; "
                  "95% CI; p Holm-corrected over every effect and interaction of the quantity; size = effect / "
                  "residual std; marginal = difference of the levels' mean cell means; alias cells count once):", "",
                  "| quantity | factor | level vs first | effect [95% CI] | p (Holm) | size | marginal | n |",
                  "|:---|:---|:---|---:|---:|---:|---:|---:|"]
        for e in effects.effects:
            interval = f" [{_num(e.ci_low)}, {_num(e.ci_high)}]" if e.ci_low is not None else " (no residual spread)"
            lines.append(f"| {_TITLES[e.quantity]} | {e.factor} | {e.level} vs {e.baseline} | {e.estimate:+.2f}"
                         f"{interval} | {_p(e.p_holm)} | {_num(e.size)} | {e.marginal:+.2f} | {e.n} |")
    if effects is not None and effects.interactions:
        lines += ["", "Interactions (where two factors are crossed; F-test of the interaction, type-II ANOVA):", "",
                  "| quantity | factors | F | p (Holm) | cells | n |", "|:---|:---|---:|---:|---:|---:|"]
        lines += [f"| {_TITLES[i.quantity]} | {' × '.join(i.factors)} | {_num(i.f_value)} | {_p(i.p_holm)} "
                  f"| {i.cells} | {i.n} |" for i in effects.interactions]
    if report.gaps:
        lines += ["", "AugLocal − BP, final test accuracy (percentage points), against the training budget:", "",
                  "| budget | training examples seen | gap [95% CI] | n | minimum detectable |",
                  "|:---|---:|---:|---:|---:|"]
        for gap in report.gaps:
            c = gap.comparison
            interval = f" [{c.ci_low:+.2f}, {c.ci_high:+.2f}]" if c.ci_low is not None else " (no interval: n < 3)"
            seen = f"{gap.examples:,.0f}" if gap.examples else "—"
            n = c.n_pairs if c.n_pairs is not None else f"{c.n[0]} vs {c.n[1]}"
            lines.append(f"| {gap.label} | {seen} | {_num(c.diff)}{interval} | {n} | {_num(c.mdd)} |")
        settled = settled_at(report.gaps)
        lines.append("")
        lines.append(f"- The gap stops moving by more than its interval from {settled.label} on." if settled else
                     "- The gap has not settled within these budgets: it still moves by more than its interval.")
    if report.importances:
        lines += ["", "Parameter importances (Optuna's fANOVA over the finished trials, first objective):", "",
                  "| parameter | importance |", "|:---|---:|"]
        lines += [f"| {name} | {value:.3f} |" for name, value in report.importances.items()]
    return lines


def write_effects_files(report: Report, out_dir: Path) -> list[Path]:
    """effects.csv and the figures, where the report has effects or gaps."""
    written = []
    effects: Effects | None = report.effects
    if effects is not None and (effects.effects or effects.interactions):
        write_text_atomic(out_dir / "effects.csv", _effects_csv(effects))
        written.append(out_dir / "effects.csv")
        written += [p for p in (_plot_main_effects(effects, out_dir), _plot_interaction(effects, out_dir)) if p]
    if report.gaps:
        written.append(_plot_gaps(report.gaps, out_dir))
    return written


def _effects_csv(effects: Effects) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["kind", "quantity", "factor", "level", "baseline", "estimate", "ci95_low", "ci95_high",
                     "p_value", "p_holm", "size", "marginal", "n"])
    for e in effects.effects:
        writer.writerow(["main", e.quantity, e.factor, e.level, e.baseline, e.estimate, e.ci_low, e.ci_high,
                         e.p_value, e.p_holm, e.size, e.marginal, e.n])
    for i in effects.interactions:
        writer.writerow(["interaction", i.quantity, " x ".join(i.factors), "", "", i.f_value, "", "", i.p_value,
                         i.p_holm, "", "", i.n])
    return out.getvalue().replace(",None", ",")


def _plot_main_effects(effects: Effects, out_dir: Path) -> Path | None:
    """One panel per factor: each level's effect on final test accuracy with its 95% CI."""
    acc = [e for e in effects.effects if e.quantity == COMPARED.name]
    factors = list(dict.fromkeys(e.factor for e in acc))
    if not factors:
        return None
    fig = Figure(figsize=(3.2 * len(factors), 3.6), layout="constrained")
    axes = fig.subplots(1, len(factors), squeeze=False)[0]
    for ax, factor in zip(axes, factors):
        rows = [e for e in acc if e.factor == factor]
        labels = [str(rows[0].baseline)] + [str(e.level) for e in rows]
        ys = [0.0] + [e.estimate for e in rows]
        low = [0.0] + [e.estimate - e.ci_low if e.ci_low is not None else 0.0 for e in rows]
        high = [0.0] + [e.ci_high - e.estimate if e.ci_high is not None else 0.0 for e in rows]
        ax.errorbar(range(len(labels)), ys, yerr=[low, high], marker="o", capsize=3)
        ax.axhline(0.0, color="gray", linewidth=0.8)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(factor)
    axes[0].set_ylabel("effect on final test acc (pp), 95% CI")
    fig.suptitle("Main effects (OLS, seeds as blocks)")
    path = out_dir / "main_effects.png"
    fig.savefig(path, dpi=120)
    return path


def _plot_interaction(effects: Effects, out_dir: Path) -> Path | None:
    """Cell means of final test accuracy for the first crossed pair: one line per level of
    the second factor (parallel lines: no interaction)."""
    if not effects.means:
        return None
    (a, b), means = next(iter(effects.means.items()))
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    a_levels = list(dict.fromkeys(la for la, _ in means))
    for lb in dict.fromkeys(lb for _, lb in means):
        ax.plot(range(len(a_levels)), [means.get((la, lb), float("nan")) for la in a_levels], marker="o",
                label=f"{b}={lb}")
    ax.set_xticks(range(len(a_levels)), [str(v) for v in a_levels])
    ax.set_xlabel(a)
    ax.set_ylabel(COMPARED.title + ", mean of cells")
    ax.legend(fontsize="small")
    ax.set_title(f"Interaction {a} × {b}")
    path = out_dir / "interaction.png"
    fig.savefig(path, dpi=120)
    return path


def _plot_gaps(gaps: list[Gap], out_dir: Path) -> Path:
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    xs = [g.examples if g.examples else i + 1 for i, g in enumerate(gaps)]
    ys = [g.comparison.diff for g in gaps]
    low = [g.comparison.diff - g.comparison.ci_low if g.comparison.ci_low is not None else 0.0 for g in gaps]
    high = [g.comparison.ci_high - g.comparison.diff if g.comparison.ci_high is not None else 0.0 for g in gaps]
    ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3)
    ax.axhline(0.0, color="gray", linewidth=0.8)
    if all(g.examples for g in gaps):
        ax.set_xscale("log")
        ax.set_xlabel("training examples seen (epochs × images)")
    else:
        ax.set_xticks(xs, [g.label for g in gaps], rotation=30, ha="right")
    ax.set_ylabel("AugLocal − BP, final test acc (pp), 95% CI")
    ax.set_title("The AugLocal − BP gap against the budget")
    path = out_dir / "gap_vs_budget.png"
    fig.savefig(path, dpi=120)
    return path
