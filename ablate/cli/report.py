"""`ablate report`: a study's tables, statistics and figures from its MLflow runs."""

from __future__ import annotations

from pathlib import Path

import click

from ..report import FORMATS, render, study_report, write_results_section
from ..tracking import Tracker, resolve_tracking_uri
from .options import read_study, set_option, study_argument, tracking_option


@click.command()
@study_argument
@set_option
@tracking_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="what to print (text: for a terminal); report.md, .html, .csv and .tex are written either way")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="write tables and plots here [default: <study dir>/report]")
@click.option("--results", type=click.Path(dir_okay=False), default=None,
              help="also put this study's section (markdown, figures linked) into this page, e.g. RESULTS.md")
def report(study, overrides, tracking_uri, fmt, out, results):
    """Mean ± std over seeds per cell, comparisons with the reference cell, plots."""
    spec = read_study(study, overrides)
    out_dir = Path(out) if out else spec.directory / "report"
    result = study_report(spec, tracking_uri=tracking_uri, out_dir=out_dir)
    click.echo(render(result, fmt))
    if any(cell.seeds for cell in result.cells):
        tracker = Tracker(resolve_tracking_uri(spec, tracking_uri), spec.experiment, system_metrics=False)
        tracker.log_parent_artifacts(tracker.parent_run_id(spec.name), result.files)
    if results:
        write_results_section(result, out_dir, Path(results), spec.overrides)
        click.echo(f"section '{spec.name}' written to {results}", err=True)
    click.echo(f"tables and plots: {out_dir}", err=True)
