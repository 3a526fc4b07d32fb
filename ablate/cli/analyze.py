"""`ablate analyze`: probes and CKA of finished runs, reloaded from their MLflow checkpoints."""

from __future__ import annotations

from pathlib import Path

import click

from ..analysis.run_lookup import find_run
from ..analysis.runs import compare_runs, probe_run
from ..errors import UserInputError
from ..spec import CKASettings, ProbeSettings, load_study
from ..tracking import resolve_tracking_uri
from ..urls import tracking_problem
from .options import checked_url, field_option, validated

study_option = click.option("--study", type=click.Path(dir_okay=False), default=None,
                            help="name runs by trial key, cell id or factors of this study")
seed_option = click.option("--seed", type=int, default=None, help="seed of a run named by its cell [default: first]")
tracking_option = click.option("--tracking-uri", default=None, envvar="ABLATE_TRACKING_URI",
                               callback=checked_url(tracking_problem), help="MLflow tracking URI [default: the study's]")
out_option = click.option("--out", type=click.Path(file_okay=False), default=None,
                          help="also keep the files here")
device_option = click.option("--device", default="auto", show_default=True)


def _field(model, name: str):
    return field_option(model, name, show_default=True)


@click.group()
def analyze():
    """Linear probes and CKA of finished runs (by MLflow run id, or --study and a cell)."""


@analyze.command()
@click.argument("run_a")
@click.argument("run_b")
@study_option
@seed_option
@tracking_option
@_field(CKASettings, "samples")
@_field(CKASettings, "reduction")
@_field(CKASettings, "estimator")
@_field(CKASettings, "batch_size")
@out_option
@device_option
def cka(run_a, run_b, study, seed, tracking_uri, samples, reduction, estimator, batch_size, out, device):
    """Layer × layer linear CKA of RUN_A with RUN_B; files logged to RUN_A's analysis/cka_vs_<RUN_B>/."""
    settings = validated(CKASettings, reference={}, samples=samples, reduction=reduction, estimator=estimator,
                         batch_size=batch_size)
    uri, spec = _where(study, tracking_uri)
    first, second = (_run(text, uri, spec, seed) for text in (run_a, run_b))
    result = compare_runs(uri, first, second, settings, device=device, out_dir=Path(out) if out else None)
    similarity = result.similarity
    click.echo(f"linear CKA ({similarity.estimator}, n={similarity.examples}, {similarity.reduction}) "
               f"of {first} (rows) with {second} (columns)")
    if len(similarity.names_a) == len(similarity.names_b):
        click.echo("same layer: " + "  ".join(f"{name.removeprefix('layer ')}:{value:.3f}"
                                              for name, value in zip(similarity.names_a, similarity.diagonal())))
    click.echo(f"logged to run {first}: " + ", ".join(path.name for path in result.files))


@analyze.command()
@click.argument("run")
@study_option
@seed_option
@tracking_option
@_field(ProbeSettings, "reduction")
@_field(ProbeSettings, "train_examples")
@out_option
@device_option
def probe(run, study, seed, tracking_uri, reduction, train_examples, out, device):
    """A linear probe on every layer of RUN; metric probe_acc and files logged to RUN."""
    settings = validated(ProbeSettings, reduction=reduction, train_examples=train_examples)
    uri, spec = _where(study, tracking_uri)
    run_id = _run(run, uri, spec, seed)
    result = probe_run(uri, run_id, settings, device=device, out_dir=Path(out) if out else None).probes
    click.echo(f"linear probes of run {run_id} ({result.reduction}; {result.train_examples} training examples, "
               f"C chosen on the {result.selection}, {result.test_examples} test examples)")
    for name, accuracy, c in zip(result.names, result.test_acc, result.chosen_c):
        click.echo(f"  {name:<10} test accuracy {accuracy:.4f}  (C={c:g})")


def _where(study: str | None, tracking_uri: str | None):
    """(tracking URI, study spec or None)."""
    spec = load_study(study) if study else None
    if spec is None and not tracking_uri:
        raise UserInputError("a run id needs --tracking-uri (or ABLATE_TRACKING_URI), or --study to find the "
                             "study's tracking store")
    return (resolve_tracking_uri(spec, tracking_uri) if spec else tracking_uri), spec


def _run(text: str, uri: str, spec, seed: int | None) -> str:
    return find_run(text, tracking_uri=uri, spec=spec, seed=seed)
