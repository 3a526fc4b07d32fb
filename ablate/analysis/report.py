"""`ablate report`: per-cell statistics over seeds, each cell against a reference cell,
and plots, from a study's finished trial runs.

Statistics: mean, sample standard deviation (ddof=1) and a 95% confidence interval from
the t-distribution, over the seeds of a cell. A cell short of seeds says which are
missing; a cell without a finished run says so.

Reference: the reference cells are those whose factors match every key of `reference`
(e.g. {"rule": "bp"}). Each other cell is compared with the reference cell that agrees
with it on the most other factor values (the first in grid order on a tie); with one
reference cell, every cell is compared with it.

Test, on final test accuracy: a paired t-test over the seeds both cells have (two at
least), else Welch's t-test over all their seeds (two each at least), else none ("too
few seeds"). The difference reported is that of the samples the test used.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shlex
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from .. import tracking
from ..errors import UserInputError
from ..files import write_text_atomic
from .claims import check_claims, render_claims
from .layer_curves import layer_curves, write_layer_curves

FORMATS = ("markdown", "csv", "latex")
FILE_NAMES = {"markdown": "report.md", "csv": "report.csv", "latex": "report.tex"}


class ReportError(UserInputError):
    """The report cannot be made as asked (e.g. the reference matches no cell)."""


@dataclass(frozen=True)
class Column:
    """One reported quantity: an MLflow metric, scaled to the unit in its title."""

    metric: str
    name: str  # CSV column stem, unit included
    title: str
    scale: float = 1.0
    digits: int = 2
    spread: bool = True  # False: the same in every seed (show the mean only)
    interval: bool = False  # the 95% CI in the markdown table too (every CI is in the CSV)


COLUMNS = (
    Column("final_test_acc", "final_test_acc_pct", "final test acc (%)", 100.0, interval=True),
    Column("best_test_acc", "best_val_test_acc_pct", "test acc at best val (%)", 100.0, interval=True),
    Column("peak_memory_bytes_max", "peak_memory_mib", "peak memory (MiB)", 1 / 2**20, 1),
    Column("time_per_epoch_s", "time_per_epoch_s", "time/epoch (s)", 1.0, 2),
    Column("aux_flops", "aux_mflops", "aux MFLOPs/example", 1e-6, 2, spread=False),
)
COMPARED = COLUMNS[0]
MEMORY = COLUMNS[2]


# ------------------------------------------------------------------------------ statistics
@dataclass(frozen=True)
class Stat:
    n: int
    mean: float
    std: float | None  # None below two values
    ci_low: float | None
    ci_high: float | None


def summarize(values: Sequence[float]) -> Stat | None:
    """Mean, sample std and 95% t-interval of the values; None for no values."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return None
    mean = float(values.mean())
    if n < 2:
        return Stat(n, mean, None, None, None)
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return Stat(n, mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class Comparison:
    reference: str  # the reference cell's id
    test: str  # "paired t-test" | "Welch's t-test" | "too few seeds" | "reference" | "reference has no finished runs"
    diff: float | None = None  # cell − reference, in the compared column's unit
    p_value: float | None = None  # None: no test, or no variance to test
    n_pairs: int | None = None  # seeds in both cells (paired test)
    n: tuple[int, int] = (0, 0)  # values of (cell, reference) the test used


def compare(values: dict[int, float], reference: dict[int, float], reference_id: str) -> Comparison:
    """Cell against reference, both given as {seed: value}."""
    if not reference:
        return Comparison(reference_id, "reference has no finished runs")
    common = sorted(set(values) & set(reference))
    if len(common) >= 2:
        a = np.array([values[s] for s in common])
        b = np.array([reference[s] for s in common])
        p = _p_value(stats.ttest_rel, a, b)
        return Comparison(reference_id, "paired t-test", float((a - b).mean()), p, len(common), (len(a), len(b)))
    a, b = np.array(list(values.values())), np.array(list(reference.values()))
    diff = float(a.mean() - b.mean()) if len(a) else None
    if len(a) >= 2 and len(b) >= 2:
        p = _p_value(lambda x, y: stats.ttest_ind(x, y, equal_var=False), a, b)
        return Comparison(reference_id, "Welch's t-test", diff, p, None, (len(a), len(b)))
    return Comparison(reference_id, "too few seeds", diff, None, None, (len(a), len(b)))


def _p_value(test, a, b) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical samples: nan, reported as None
        p = float(test(a, b).pvalue)
    return None if math.isnan(p) else p


# ------------------------------------------------------------------------------ cells
def _plain(value):
    """A factor value as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def cell_label(factors: dict, cell_id: str) -> str:
    return ", ".join(f"{k}={v}" for k, v in factors.items()) or f"cell {cell_id}"


@dataclass
class CellSummary:
    cell_id: str
    factors: dict
    seeds: list[int]  # seeds with a finished run
    expected_seeds: tuple[int, ...] | None
    values: dict[str, dict[int, float]]  # column name → {seed: value in the column's unit}
    stats: dict[str, Stat | None]
    comparison: Comparison | None = None

    @property
    def label(self) -> str:
        return cell_label(self.factors, self.cell_id)

    @property
    def missing_seeds(self) -> list[int]:
        return [s for s in (self.expected_seeds or ()) if s not in self.seeds]

    @property
    def n_text(self) -> str:
        if not self.seeds:
            return "no finished runs"
        if not self.missing_seeds:
            return str(len(self.seeds))
        missing = ", ".join(map(str, self.missing_seeds))
        return f"{len(self.seeds)} of {len(self.expected_seeds)}, missing seeds: {missing}"


def _summarize_cell(cell_id: str, factors: dict, runs: list[dict], seeds: tuple[int, ...] | None) -> CellSummary:
    values = {}
    for col in COLUMNS:
        values[col.name] = {r["seed"]: r["metrics"][col.metric] * col.scale
                            for r in runs if r["metrics"].get(col.metric) is not None}
    return CellSummary(
        cell_id=cell_id, factors=factors, seeds=sorted(r["seed"] for r in runs), expected_seeds=seeds,
        values=values, stats={name: summarize(list(v.values())) for name, v in values.items()})


def _matches(factors: dict, reference: dict) -> bool:
    return all(k in factors and _plain(factors[k]) == _plain(v) for k, v in reference.items())


def _closest(cell: CellSummary, candidates: list[CellSummary], reference: dict) -> CellSummary:
    def shared(candidate):
        return sum(1 for k, v in cell.factors.items()
                   if k not in reference and k in candidate.factors and _plain(candidate.factors[k]) == _plain(v))
    return max(candidates, key=shared)  # max keeps the first of equals: grid order decides ties


def _attach_comparisons(cells: list[CellSummary], reference: dict, study: str) -> None:
    candidates = [c for c in cells if _matches(c.factors, reference)]
    if not candidates:
        labels = "; ".join(c.label for c in cells[:6]) + ("; …" if len(cells) > 6 else "")
        raise ReportError(
            f"report reference {cell_label(reference, '?')} matches no cell of study {study!r} (cells: {labels}); "
            "name factor values of one cell under `report: reference:` in the study file")
    reference_ids = {c.cell_id for c in candidates}
    for cell in cells:
        if cell.cell_id in reference_ids:
            cell.comparison = Comparison(cell.cell_id, "reference")
        elif cell.seeds:
            ref = _closest(cell, candidates, reference)
            cell.comparison = compare(cell.values[COMPARED.name], ref.values[COMPARED.name], ref.cell_id)


# ------------------------------------------------------------------------------ report
@dataclass
class Report:
    study: str
    cells: list[CellSummary]
    reference: dict | None
    seeds: tuple[int, ...] | None
    notes: list[str] = field(default_factory=list)
    fmt: str = "markdown"
    files: list[Path] = field(default_factory=list)  # tables and plots written to out_dir
    figures: list[tuple[str, Path]] = field(default_factory=list)  # per-layer analyses, linked in markdown
    claims: list = field(default_factory=list)  # claims.Claim: the paper's claims checked on these numbers
    commands: list[str] = field(default_factory=list)  # what reproduces every number

    @property
    def text(self) -> str:
        return self.render(self.fmt)

    def render(self, fmt: str) -> str:
        return {"markdown": to_markdown, "csv": to_csv, "latex": to_latex}[fmt](self)

    @property
    def reference_label(self) -> str:
        return cell_label(self.reference, "?") if self.reference else "none"

    @property
    def heading(self) -> str:
        seeds = (f"seeds {', '.join(map(str, self.seeds))} ({len(self.seeds)} per cell)"
                 if self.seeds is not None else "seeds as run")
        return f"Study {self.study} · {len(self.cells)} cells · {seeds} · reference: {self.reference_label}"


def build_report(runs: Sequence[dict], *, study: str, cells: Sequence[tuple[str, dict]] | None = None,
                 seeds: Sequence[int] | None = None, reference: dict | None = None,
                 out_dir: str | Path | None = None, fmt: str = "markdown") -> Report:
    """The report of a study from its finished trial runs (dicts as
    `tracking.finished_trial_runs` returns them).

    `cells` ((cell_id, factors) in grid order) and `seeds` are what the study expects:
    runs outside them are left out (and counted in the notes), cells without runs are
    listed. Without them, the cells and seeds are those of the runs. With `out_dir`,
    the tables (every format) and plots are written there and listed in `Report.files`.
    """
    if fmt not in FORMATS:
        raise ReportError(f"report format {fmt!r}: choose one of {', '.join(FORMATS)}")
    latest = list(tracking.latest_per_trial(runs).values())
    duplicates, runs = len(runs) - len(latest), latest
    notes = []
    if duplicates:
        notes.append(f"{duplicates} finished run(s) repeat a trial; the latest of each is used")
    if cells is None:
        cells = list({r["cell_id"]: (r["cell_id"], r["factors"]) for r in runs}.values())
    expected = {cell_id for cell_id, _ in cells}
    kept = [r for r in runs if r["cell_id"] in expected and (seeds is None or r["seed"] in seeds)]
    if len(kept) < len(runs):
        notes.append(f"{len(runs) - len(kept)} finished run(s) of cells or seeds no longer in the study are left out")
    by_cell: dict[str, list[dict]] = {cell_id: [] for cell_id, _ in cells}
    for run in kept:
        by_cell[run["cell_id"]].append(run)
    seeds = tuple(seeds) if seeds is not None else None
    summaries = [_summarize_cell(cell_id, dict(factors), by_cell[cell_id], seeds) for cell_id, factors in cells]
    if not summaries:
        notes.append("no finished runs yet")
    elif reference:
        _attach_comparisons(summaries, reference, study)
    report = Report(study, summaries, reference, seeds, notes, fmt)
    if out_dir is not None:
        report.files = write_report_files(report, Path(out_dir))
    return report


def study_report(spec, *, tracking_uri: str | None = None, reference: dict | None = None,
                 out_dir: str | Path | None = None, fmt: str = "markdown") -> Report:
    """The report of a StudySpec from its MLflow runs. Tracking URI: the argument, else
    the study's, else the default beside the study; reference: the argument, else the
    study's `report: reference:`; files go to `out_dir`, else <study dir>/report.
    A grid study expects its cells × seeds; a search study, whatever ran."""
    uri = tracking.resolve_tracking_uri(spec, tracking_uri)
    runs = tracking.finished_trial_runs(uri, spec.experiment, study=spec.name)
    grid = bool(spec.trials)
    out_dir = Path(out_dir) if out_dir is not None else Path(spec.directory) / "report"
    report = build_report(runs, study=spec.name, cells=spec.cells() if grid else None,
                          seeds=spec.seeds if grid else None, reference=reference or spec.reference, fmt=fmt)
    latest = tracking.latest_per_trial(runs).values()
    per_cell = [(cell.cell_id, cell.label, [r for r in latest if r["cell_id"] == cell.cell_id
                                            and r["seed"] in cell.seeds]) for cell in report.cells]
    curves = layer_curves(uri, per_cell)
    report.figures = write_layer_curves(curves, out_dir, spec.name)
    report.claims = check_claims(report, curves)
    report.commands = reproduce_commands(spec)
    report.files = write_report_files(report, out_dir)
    return report


def reproduce_commands(spec) -> list[str]:
    """The commands that train and report this study as it was run (overrides included)."""
    try:
        path = spec.path.relative_to(Path.cwd())
    except ValueError:
        path = spec.path
    sets = "".join(" --set " + shlex.quote(f"{key}={value if isinstance(value, str) else json.dumps(value)}")
                   for key, value in spec.overrides.items())
    return [f"ablate run {path}{sets}", f"ablate report {path}{sets}"]


def write_report_files(report: Report, out_dir: Path) -> list[Path]:
    """The plots (listed first among the report's figures), then the tables that link
    them, in every format; every file written, the report's figures included."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = [path for plot in (plot_accuracy_vs_aux_depth, plot_accuracy_vs_memory)
             if (path := plot(report, out_dir)) is not None]
    report.figures = [(f"{report.study}: {p.stem.replace('_', ' ')}", p) for p in plots] + report.figures
    for fmt, name in FILE_NAMES.items():
        write_text_atomic(out_dir / name, report.render(fmt))
    return [out_dir / name for name in FILE_NAMES.values()] + [path for _, path in report.figures]


# ------------------------------------------------------------------------------ formats
def _stat_text(stat: Stat | None, col: Column, interval: bool) -> str:
    if stat is None:
        return "—"
    d = col.digits
    if stat.std is None or not col.spread:
        return f"{stat.mean:.{d}f}"
    text = f"{stat.mean:.{d}f} ± {stat.std:.{d}f}"
    return text + (f" [{stat.ci_low:.{d}f}, {stat.ci_high:.{d}f}]" if interval and col.interval else "")


_SHORT_TEST = {"paired t-test": "paired t", "Welch's t-test": "Welch t"}


def _comparison_text(c: Comparison | None) -> str:
    if c is None:
        return "—"
    if c.test in ("reference", "reference has no finished runs"):
        return c.test
    diff = "" if c.diff is None else f"{c.diff:+.{COMPARED.digits}f} "
    if c.test == "too few seeds":
        return f"{diff}(too few seeds)"
    p = "p n/a: no variance" if c.p_value is None else f"p={c.p_value:.3g}"
    n = f"n={c.n_pairs} pairs" if c.n_pairs is not None else f"n={c.n[0]} vs {c.n[1]}"
    return f"{diff}({p}, {_SHORT_TEST[c.test]}, {n})"


def _table(report: Report, interval: bool) -> tuple[list[str], list[list[str]]]:
    header = ["cell", "n"] + [c.title for c in COLUMNS]
    if report.reference:
        header.append(f"Δ {COMPARED.title.replace(' (%)', '')} vs reference (pp)")
    rows = []
    for cell in report.cells:
        row = [cell.label, cell.n_text]
        if cell.seeds:
            row += [_stat_text(cell.stats[c.name], c, interval) for c in COLUMNS]
        else:
            row += ["—"] * len(COLUMNS)
        if report.reference:
            row.append(_comparison_text(cell.comparison))
        rows.append(row)
    return header, rows


def to_markdown(report: Report, link_base: str = "") -> str:
    header, rows = _table(report, interval=True)
    escape = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = [
        f"**{report.heading}**",
        "",
        "Values: mean ± std over seeds, accuracies with [95% CI]."
        + (f" Δ: {COMPARED.title} minus the reference cell's, paired by seed where possible." if report.reference
           else ""),
        "",
        "| " + " | ".join(map(escape, header)) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(map(escape, row)) + " |" for row in rows]
    lines += [""] + [f"- {note}" for note in report.notes]
    lines += render_claims(report.claims)
    if report.figures:
        lines += ["", "Figures (mean ± std over seeds):", ""]
        lines += [f"![{title}]({link_base}{path.name})" if path.suffix == ".png"
                  else f"- {title}: [{path.name}]({link_base}{path.name})" for title, path in report.figures]
    if report.commands:
        lines += ["", "Reproduce:", "", "```bash", *report.commands, "```"]
    return "\n".join(lines).rstrip() + "\n"


def to_csv(report: Report) -> str:
    factor_keys = list(dict.fromkeys(k for cell in report.cells for k in cell.factors))
    header = ["cell_id", "label", *factor_keys, "n", "expected_n", "missing_seeds"]
    for col in COLUMNS:
        header += [f"{col.name}_{s}" for s in ("n", "mean", "std", "ci95_low", "ci95_high")]
    header += ["reference_cell_id", "test", "n_pairs", f"diff_{COMPARED.name}", "p_value"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for cell in report.cells:
        row = [cell.cell_id, cell.label, *[_csv_value(cell.factors.get(k)) for k in factor_keys], len(cell.seeds),
               "" if cell.expected_seeds is None else len(cell.expected_seeds),
               " ".join(map(str, cell.missing_seeds))]
        for col in COLUMNS:
            s = cell.stats[col.name]
            row += [_csv_value(v) for v in ((s.n, s.mean, s.std, s.ci_low, s.ci_high) if s else (None,) * 5)]
        c = cell.comparison
        row += ["", "", "", "", ""] if c is None else [
            c.reference, c.test, _csv_value(c.n_pairs), _csv_value(c.diff), _csv_value(c.p_value)]
        writer.writerow(row)
    return out.getvalue()


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    text = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return text.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("—", "--")


def to_latex(report: Report) -> str:
    """A booktabs tabular (\\usepackage{booktabs}); mean ± std, intervals in the CSV."""
    header, rows = _table(report, interval=False)
    lines = [
        f"% {report.heading}",
        "% mean ± std over seeds; needs \\usepackage{booktabs}",
        r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(map(_latex_escape, header)) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(map(_latex_escape, row)) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ plots
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
