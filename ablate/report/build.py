"""Building a report from a study's finished trial runs: per-cell figures over seeds, each
cell against its reference cell, the per-layer curves and the paper's claims, written
in every format with its figures.

Reference: the reference cells are those whose factors match every key of `reference`
(e.g. {"rule": "bp"}). Each other cell is compared with the reference cell that agrees
with it on the most other factor values (the first in grid order on a tie); with one
reference cell, every cell is compared with it. A cell short of seeds says which are
missing; a cell without a finished run says so.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from .. import tracking
from ..files import write_text_atomic
from ..tracking import RunRecord
from .claims import check_claims
from .figures import plot_accuracy_vs_aux_depth, plot_accuracy_vs_memory
from .layer_curves import layer_curves, write_layer_curves
from .statistics import Comparison, compare, summarize
from .summary import COLUMNS, COMPARED, CellSummary, Report, ReportError, cell_label, plain
from .tables import FILE_NAMES, render


def _summarize_cell(cell_id: str, factors: dict, runs: list[RunRecord],
                    seeds: tuple[int, ...] | None) -> CellSummary:
    values = {}
    for col in COLUMNS:
        values[col.name] = {r.seed: r.metrics[col.metric] * col.scale
                            for r in runs if r.metrics.get(col.metric) is not None}
    return CellSummary(
        cell_id=cell_id, factors=factors, seeds=sorted(r.seed for r in runs), expected_seeds=seeds,
        values=values, stats={name: summarize(list(v.values())) for name, v in values.items()})


def _matches(factors: dict, reference: dict) -> bool:
    return all(k in factors and plain(factors[k]) == plain(v) for k, v in reference.items())


def _closest(cell: CellSummary, candidates: list[CellSummary], reference: dict) -> CellSummary:
    def shared(candidate):
        return sum(1 for k, v in cell.factors.items()
                   if k not in reference and k in candidate.factors and plain(candidate.factors[k]) == plain(v))
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


def build_report(runs: Sequence[RunRecord], *, study: str, cells: Sequence[tuple[str, dict]] | None = None,
                 seeds: Sequence[int] | None = None, reference: dict | None = None,
                 out_dir: str | Path | None = None) -> Report:
    """The report of a study from its finished trial runs (`tracking.finished_trial_runs`).

    `cells` ((cell_id, factors) in grid order) and `seeds` are what the study expects:
    runs outside them are left out (and counted in the notes), cells without runs are
    listed. Without them, the cells and seeds are those of the runs. With `out_dir`,
    the tables (every format) and plots are written there and listed in `Report.files`.
    """
    latest = list(tracking.latest_per_trial(runs).values())
    duplicates, runs = len(runs) - len(latest), latest
    notes = []
    if duplicates:
        notes.append(f"{duplicates} finished run(s) repeat a trial; the latest of each is used")
    if cells is None:
        cells = list({r.cell_id: (r.cell_id, r.factors) for r in runs}.values())
    expected = {cell_id for cell_id, _ in cells}
    kept = [r for r in runs if r.cell_id in expected and (seeds is None or r.seed in seeds)]
    if len(kept) < len(runs):
        notes.append(f"{len(runs) - len(kept)} finished run(s) of cells or seeds no longer in the study are left out")
    by_cell: dict[str, list[dict]] = {cell_id: [] for cell_id, _ in cells}
    for run in kept:
        by_cell[run.cell_id].append(run)
    seeds = tuple(seeds) if seeds is not None else None
    summaries = [_summarize_cell(cell_id, dict(factors), by_cell[cell_id], seeds) for cell_id, factors in cells]
    if not summaries:
        notes.append("no finished runs yet")
    elif reference:
        _attach_comparisons(summaries, reference, study)
    report = Report(study, summaries, reference, seeds, notes)
    if out_dir is not None:
        report.files = write_report_files(report, Path(out_dir))
    return report


def study_report(spec, *, tracking_uri: str | None = None, reference: dict | None = None,
                 out_dir: str | Path | None = None) -> Report:
    """The report of a StudySpec from its MLflow runs. Tracking URI: the argument, else
    the study's, else the default beside the study; reference: the argument, else the
    study's `report: reference:`; files go to `out_dir`, else <study dir>/report.
    A grid study expects its cells × seeds; a search study, whatever ran."""
    uri = tracking.resolve_tracking_uri(spec, tracking_uri)
    runs = tracking.finished_trial_runs(uri, spec.experiment, study=spec.name)
    grid = bool(spec.trials)
    out_dir = Path(out_dir) if out_dir is not None else Path(spec.directory) / "report"
    report = build_report(runs, study=spec.name, cells=spec.cells() if grid else None,
                          seeds=spec.seeds if grid else None, reference=reference or spec.reference)
    latest = tracking.latest_per_trial(runs).values()
    per_cell = [(cell.cell_id, cell.label, [r for r in latest if r.cell_id == cell.cell_id
                                            and r.seed in cell.seeds]) for cell in report.cells]
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
        write_text_atomic(out_dir / name, render(report, fmt))
    return [out_dir / name for name in FILE_NAMES.values()] + [path for _, path in report.figures]
