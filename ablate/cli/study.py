"""`ablate validate`, `ablate run` and `ablate status`: a study file checked, trained and
looked at."""

from __future__ import annotations

import click

from ..study import render_dry_run, run_study, study_status
from ..study.analyses import analysis_counts
from ..tracking import resolve_tracking_uri
from ..spec import check_runnable
from .main import EXIT_TRIALS_FAILED
from .options import read_study, set_option, storage_option, study_argument, tracking_option


@click.command()
@study_argument
@set_option
def validate(study, overrides):
    """Check a study file without training or creating anything."""
    spec = read_study(study, overrides)
    check_runnable(spec)
    kind = f"search of {spec.search.n_trials} trials" if spec.search else f"{len(spec.cells())} cells"
    click.echo(f"{study}: ok · study {spec.name} · {kind} × {len(spec.seeds)} seed(s)")


@click.command()
@study_argument
@set_option
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1),
              help="trials trained at once, each in its own process")
@click.option("--retry-failed", is_flag=True, help="train failed trials again")
@click.option("--dry-run", is_flag=True, help="print the cells (with their auxiliary plans) and stop")
@storage_option
@tracking_option
@click.option("--quiet", is_flag=True, help="no progress display")
def run(study, overrides, jobs, retry_failed, dry_run, storage, tracking_uri, quiet):
    """Train every cell × seed of a study that is not finished yet. Exit code 1 when trials
    of the study are failed at the end (the summary names each and why)."""
    spec = read_study(study, overrides)
    check_runnable(spec)
    if dry_run:
        click.echo(render_dry_run(spec, storage, tracking_uri, jobs))
        counts = study_status(spec, storage=storage).counts()
        click.echo("trials: " + " · ".join(f"{n} {state}" for state, n in counts.items()))
        return
    summary = run_study(spec, jobs=jobs, retry_failed=retry_failed, storage=storage,
                        tracking_uri=tracking_uri, progress=not quiet, echo=click.echo)
    if summary.failed_total:
        raise click.exceptions.Exit(EXIT_TRIALS_FAILED)


@click.command()
@study_argument
@set_option
@storage_option
@tracking_option
def status(study, overrides, storage, tracking_uri):
    """Done / running / failed (with reasons) / pending trials of a study, and its analyses."""
    spec = read_study(study, overrides)
    click.echo(study_status(spec, storage=storage).render())
    if spec.analysis is not None:
        counts = analysis_counts(spec, resolve_tracking_uri(spec, tracking_uri))
        click.echo("analyses of finished trials: " + (", ".join(f"{n} {state}" for state, n in counts.items())
                                                      or "none finished yet"))
