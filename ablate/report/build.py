"""Building a report from a study's finished trial runs: per-cell figures over seeds, each
cell against its reference cell, the per-layer curves and the paper's claims, written
in every format with its figures.

Reference: the reference cells are those whose factors match every key of `reference`
(e.g. {"rule": "bp"}). Each other cell is compared with the reference cell that agrees
with it on the most other factor values (the first in grid order on a tie); with one
reference cell, every cell is compared with it. A cell short of seeds says which are
missing; a cell without a finished run says so. An alias cell (the same networks as
another cell, trained once) shows the trials of the cell it shares and says so; it is
not compared or tested twice. p-values of the comparisons are Holm-corrected too.
Grid studies get the factor effects (ablate.report.effects) and, where the study varies
the budget, the AugLocal − BP gap against it; search studies, Optuna's fANOVA
importances (computed in ablate.study, the only layer that imports Optuna).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import tracking
from ..files import staged_folder, write_text_atomic
from ..outage import storage_fault
from ..tracking import RunRecord
from ..study import param_importances
from ..urls import mask_url
from .claims import INCONCLUSIVE, check_claims
from .effects import estimate_effects
from .effects_budget import budget_gaps
from .effects_render import write_effects_files
from .figures import plot_accuracy_vs_aux_depth, plot_accuracy_vs_memory
from .layer_curves import layer_curves, write_layer_curves
from .settle import settle_lines
from .statistics import Comparison, compare, holm, summarize
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
        values=values, stats={col.name: summarize(list(values[col.name].values()), col.percent) for col in COLUMNS})


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
            if cell.same_as is not None and cell.same_as == ref.label:
                cell.comparison = Comparison(ref.cell_id, "same network as the reference")
            else:
                cell.comparison = compare(cell.values[COMPARED.name], ref.values[COMPARED.name], ref.cell_id)
    tested = [c for c in cells if c.same_as is None and c.comparison is not None]
    for cell, p_holm in zip(tested, holm([c.comparison.p_value for c in tested])):
        cell.comparison = dataclasses.replace(cell.comparison, p_holm=p_holm)


def build_report(runs: Sequence[RunRecord], *, study: str, cells: Sequence[tuple[str, dict]] | None = None,
                 seeds: Sequence[int] | None = None, reference: dict | None = None,
                 out_dir: str | Path | None = None, aliases: dict[str, str] | None = None) -> Report:
    """The report of a study from its finished trial runs (`tracking.finished_trial_runs`).

    `cells` ((cell_id, factors) in grid order) and `seeds` are what the study expects:
    runs outside them are left out (and counted in the notes), cells without runs are
    listed. Without them, the cells and seeds are those of the runs. `aliases` ({cell id:
    the cell id whose trials it shares}) names cells that train nothing themselves. With `out_dir`,
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
    aliases = aliases or {}
    labels = {cell_id: cell_label(dict(factors), cell_id) for cell_id, factors in cells}
    summaries = [_summarize_cell(cell_id, dict(factors), by_cell[aliases.get(cell_id, cell_id)], seeds)
                 for cell_id, factors in cells]
    for summary in summaries:
        if summary.cell_id in aliases:
            summary.same_as = labels[aliases[summary.cell_id]]
    if aliases:
        notes.append(f"{len(aliases)} cell(s) train the same networks as another cell and share its trials "
                     "(\"same network as\" in n); each training counts once in the tests and effects")
    if not summaries:
        notes.append("no finished runs yet")
    elif reference:
        _attach_comparisons(summaries, reference, study)
    report = Report(study, summaries, reference, seeds, notes)
    report.effects = estimate_effects(summaries)
    report.gaps = budget_gaps([c for c in summaries if c.same_as is None])
    if out_dir is not None:
        def write(folder: Path) -> None:
            report.files = write_report_files(report, folder)
        _write_staged(report, Path(out_dir), write)
    return report


def study_report(spec, *, tracking_uri: str | None = None, reference: dict | None = None,
                 out_dir: str | Path | None = None) -> Report:
    """The report of a StudySpec from its MLflow runs. Tracking URI: the argument, else
    the study's, else the default beside the study; reference: the argument, else the
    study's `report: reference:`; files go to `out_dir`, else <study dir>/report.
    A grid study expects its cells × seeds; a search study, whatever ran. No finished
    run is a ReportError (a mistyped tracking URI must not replace a good report with an
    empty one), and nothing is written."""
    uri = tracking.resolve_tracking_uri(spec, tracking_uri)
    tracking.check_tracking_reachable(uri)  # one line within seconds, not minutes of retries
    runs = tracking.finished_trial_runs(uri, spec.experiment, study=spec.name)
    if not runs:
        raise ReportError(f"study {spec.name!r} has no finished runs in the MLflow store {mask_url(uri)}; train it "
                          "with `ablate run`, or fix --tracking-uri, ABLATE_TRACKING_URI or 'tracking: uri:' in the "
                          "study file")
    grid = bool(spec.trials)
    out_dir = Path(out_dir) if out_dir is not None else Path(spec.directory) / "report"
    layout = [(entry.cell_id, entry.factors) for entry in spec.layout]
    report = build_report(runs, study=spec.name, cells=layout if grid else None,
                          seeds=spec.seeds if grid else None, reference=reference or spec.reference,
                          aliases=spec.aliases())
    report.budget = describe_budget(spec)
    if not grid:
        report.importances = param_importances(spec)
    latest = tracking.latest_per_trial(runs).values()
    trained_as = spec.aliases()
    per_cell = [(cell.cell_id, cell.label, [r for r in latest if r.cell_id == trained_as.get(cell.cell_id, cell.cell_id)
                                            and r.seed in cell.seeds]) for cell in report.cells]
    curves = layer_curves(uri, per_cell)
    report.claims = check_claims(report, curves)
    report.settle = settle_lines([c for c in report.claims if c.verdict == INCONCLUSIVE], study_path(spec),
                                 report.budget, len(spec.seeds))
    report.commands = reproduce_commands(spec)

    def write(folder: Path) -> None:
        report.figures = write_layer_curves(curves, folder, spec.name)
        report.files = write_report_files(report, folder)
    _write_staged(report, out_dir, write)
    return report


# what a report folder that cannot be written costs: the user picks another, or frees space
_NOT_A_FOLDER = (errno.ENOTDIR, errno.EEXIST)  # --out names a file; the rest is outage.storage_fault's


def _write_staged(report: Report, out_dir: Path, write: Callable[[Path], None]) -> None:
    """`write(folder)` into a temporary folder, moved into `out_dir` once all of it is
    written (the previous report stays whole until then); the report's paths then name
    the files in `out_dir`. A folder that cannot be written is a ReportError."""
    try:
        with staged_folder(out_dir) as stage:
            write(stage)
    except OSError as err:
        if storage_fault(err) is None and err.errno not in _NOT_A_FOLDER:
            raise
        raise ReportError(f"cannot write the report to {out_dir}: {os.strerror(err.errno)}; choose another --out "
                          "or free space there") from None
    report.files = [out_dir / path.relative_to(stage) for path in report.files]
    report.figures = [(title, out_dir / path.relative_to(stage)) for title, path in report.figures]


def describe_budget(spec) -> str:
    """The training budget of a study's trials in words; a setting that differs between
    cells is named as varying."""
    configs = [t.config for t in spec.trials] or [spec.trial({}, spec.seeds[0]).config]

    def one(key: str, text):
        values = {getattr(c, key) for c in configs}
        return text(values.pop()) if len(values) == 1 else f"{key} varying by cell"

    images = one("train_subset", lambda v: "all training images" if v is None else f"{v:,} training images")
    return (f"{one('epochs', lambda v: f'{v} epochs')} × {images}, batch {one('batch_size', str)}, "
            f"{one('model', str)} at width {one('width', lambda v: f'{v:g}')}, {one('dataset', str)}")


def study_path(spec) -> str:
    """The study file as a user types it here: relative to the working folder when inside it."""
    try:
        return str(spec.path.relative_to(Path.cwd()))
    except ValueError:
        return str(spec.path)


def reproduce_commands(spec) -> list[str]:
    """The commands that train and report this study as it was run (overrides included)."""
    path = study_path(spec)
    sets = "".join(" --set " + shlex.quote(f"{key}={value if isinstance(value, str) else json.dumps(value)}")
                   for key, value in spec.overrides.items())
    return [f"ablate run {path}{sets}", f"ablate report {path}{sets}"]


def write_report_files(report: Report, out_dir: Path) -> list[Path]:
    """The plots (listed first among the report's figures), then the tables that link
    them, in every format; every file written, the report's figures included."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = [path for plot in (plot_accuracy_vs_aux_depth, plot_accuracy_vs_memory)
             if (path := plot(report, out_dir)) is not None]
    effect_files = write_effects_files(report, out_dir)
    plots += [path for path in effect_files if path.suffix == ".png"]
    report.figures = [(f"{report.study}: {p.stem.replace('_', ' ')}", p) for p in plots] + report.figures
    for fmt, name in FILE_NAMES.items():
        write_text_atomic(out_dir / name, render(report, fmt))
    return ([out_dir / name for name in FILE_NAMES.values()] + [p for p in effect_files if p.suffix != ".png"]
            + [path for _, path in report.figures])
