"""The `ablate` command. Thin: parse, call the library, print. A user mistake is one
line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import types
import typing

import click
import pydantic

from .config import TrainConfig

EXIT_USER_ERROR = 2


class UserError(click.ClickException):
    exit_code = EXIT_USER_ERROR


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _validation_message(err: pydantic.ValidationError) -> str:
    from .errors import validation_text

    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "settings"
    option = "--" + key.replace("_", "-")
    return f"{option}: {validation_text(first)}"


def make_config(**given) -> TrainConfig:
    """A TrainConfig from the options the user gave (None = not given)."""
    values = {k: v for k, v in given.items() if v is not None}
    try:
        return TrainConfig(**values)
    except pydantic.ValidationError as err:
        raise UserError(_validation_message(err)) from None


# --------------------------------------------------------------------------------------
# `ablate train` takes every TrainConfig field as an option, generated from the model so
# that settings are defined in exactly one place.

_CLICK_TYPES = {int: int, float: float, str: str}


def _field_option(name: str, info):
    """A click.option decorator for one TrainConfig field."""
    flag = "--" + name.replace("_", "-")
    annotation = info.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    default_note = f"[default: {info.default}]" if info.default not in (None, ()) else ""
    common = {"default": None, "help": f"{info.description or ''} {default_note}".strip()}
    if annotation is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", **common)
    if typing.get_origin(annotation) is typing.Literal:
        return click.option(flag, type=str, metavar="|".join(typing.get_args(annotation)), **common)
    if typing.get_origin(annotation) is tuple:
        return click.option(flag, type=str, metavar="E1,E2,...", callback=_parse_int_list, **common)
    return click.option(flag, type=_CLICK_TYPES.get(annotation, str), **common)


def _parse_int_list(ctx, param, value):
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise UserError(f"--{param.name.replace('_', '-')}: expected comma-separated integers, got {value!r}") from None


def train_config_options(command):
    for name, info in reversed(list(TrainConfig.model_fields.items())):
        command = _field_option(name, info)(command)
    return command


# --------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ablate")
def cli():
    """Ablation studies of supervised local learning (AugLocal and its baselines)."""


@cli.command()
@click.option("--model", default="resnet32", show_default=True, help="backbone name")
@click.option("--rule", default="auglocal", show_default=True, help="bp|auglocal|dgl|infopro|predsim")
@click.option("--aux-depth", default=2, show_default=True, type=int, help="base auxiliary depth d")
@click.option("--selection", default="uniform", show_default=True, help="uniform|sequential|repetitive|random")
@click.option("--decay", default="constant", show_default=True, help="constant|linear|exponential|step")
@click.option("--decay-coeff", default=0.5, show_default=True, type=float, help="decay coefficient tau in [0, 1]")
@click.option("--head-layers", default=None, type=int, help="end-to-end head group size [default: the rule's]")
@click.option("--in-channels", default=3, show_default=True, type=int)
@click.option("--num-classes", default=10, show_default=True, type=int)
@click.option("--image-size", default=32, show_default=True, type=int)
@click.option("--width", default=1.0, show_default=True, type=float, help="channel multiplier")
@click.option("--seed", default=0, show_default=True, type=int, help="seeds the random selection strategy")
@click.option("--json", "as_json", is_flag=True, help="print exactly one JSON object")
def describe(model, rule, aux_depth, selection, decay, decay_coeff, head_layers, in_channels,
             num_classes, image_size, width, seed, as_json):
    """Show the auxiliary plan of a network: per local layer its depth, the layers its
    auxiliary net copies, and that net's parameters and forward FLOPs."""
    from .build import build_network
    from .config import RULE_NAMES
    from .describe import describe_network, render_description

    if rule not in RULE_NAMES:
        raise UserError(f"--rule: unknown rule {rule!r}; choose one of {', '.join(RULE_NAMES)}")
    for option, value in (("--in-channels", in_channels), ("--num-classes", num_classes), ("--image-size", image_size)):
        if value < 1:
            raise UserError(f"{option} must be >= 1, got {value}")
    net = build_network(model=model, rule=rule, aux_depth=aux_depth, selection=selection, decay=decay,
                        decay_coeff=decay_coeff, head_layers=head_layers, seed=seed, width=width,
                        in_channels=in_channels, num_classes=num_classes, image_size=image_size)
    description = describe_network(net)
    if as_json:
        click.echo(json.dumps(description))
    else:
        click.echo(render_description(description, rule))


@cli.command()
@train_config_options
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), default=None,
              help="save a checkpoint every epoch here; a run started on it resumes")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="write every metric as JSON")
@click.option("--quiet", is_flag=True, help="no progress bar")
def train(checkpoint_dir, json_out, quiet, **settings):
    """Train one network and print a summary table."""
    from .files import write_json_atomic
    from .summary import render_train_summary
    from .train import Trainer

    config = make_config(**settings)
    trainer = Trainer(config, checkpoint_dir=checkpoint_dir, progress=not quiet)
    with _stop_on_first_interrupt(trainer):
        result = trainer.fit()
    click.echo(render_train_summary(result))
    if json_out:
        write_json_atomic(json_out, result)
    if result["status"] != "finished":
        raise UserError(result["message"])


# --------------------------------------------------------------------------------------
# Studies


def _overrides(pairs: tuple[str, ...]) -> dict:
    """`--set key=value` pairs, values read as YAML scalars (2, 0.1, true, null, linear)."""
    import yaml

    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set epochs=2")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UserError(f"--set {pair!r}: the value is not a YAML scalar") from None
    return overrides


study_argument = click.argument("study", type=click.Path(dir_okay=False))
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="override a fixed setting of the study file (repeatable), e.g. --set epochs=2")
storage_option = click.option("--storage", default=None, envvar="ABLATE_STORAGE",
                              help="Optuna storage URL [default: the study file's, else beside the study]")
tracking_option = click.option("--tracking-uri", default=None, envvar="ABLATE_TRACKING_URI",
                               help="MLflow tracking URI [default: the study file's, else sqlite beside the study]")


def _load(study: str, overrides: tuple[str, ...]):
    from .spec import load_study

    return load_study(study, _overrides(overrides))


@cli.command()
@study_argument
@set_option
def validate(study, overrides):
    """Check a study file without training or creating anything."""
    spec = _load(study, overrides)
    kind = f"search of {spec.search.n_trials} trials" if spec.search else f"{len(spec.cells())} cells"
    click.echo(f"{study}: ok · study {spec.name} · {kind} × {len(spec.seeds)} seed(s)")


@cli.command()
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
    """Train every cell × seed of a study that is not finished yet."""
    spec = _load(study, overrides)
    if dry_run:
        from .spec import render_dry_run
        from .study import study_status

        click.echo(render_dry_run(spec, storage, tracking_uri))
        counts = study_status(spec, storage=storage).counts()
        click.echo("trials: " + " · ".join(f"{n} {state}" for state, n in counts.items()))
        return
    from .study import run_study

    summary = run_study(spec, jobs=jobs, retry_failed=retry_failed, storage=storage,
                        tracking_uri=tracking_uri, progress=not quiet, echo=click.echo)
    if summary.failed:
        raise click.exceptions.Exit(1)


@cli.command()
@study_argument
@set_option
@storage_option
@tracking_option
def status(study, overrides, storage, tracking_uri):
    """Done / running / failed (with reasons) / pending trials of a study, and its analyses."""
    from .study import study_status

    spec = _load(study, overrides)
    click.echo(study_status(spec, storage=storage).render())
    if spec.analysis is not None:
        from .study.analyses import analysis_counts
        from .tracking import resolve_tracking_uri

        counts = analysis_counts(spec, resolve_tracking_uri(spec, tracking_uri))
        click.echo("analyses of finished trials: " + (", ".join(f"{n} {state}" for state, n in counts.items())
                                                      or "none finished yet"))


@cli.command()
@study_argument
@set_option
@tracking_option
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "latex"]), default="markdown",
              show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="write tables and plots here [default: <study dir>/report]")
@click.option("--results", type=click.Path(dir_okay=False), default=None,
              help="also put this study's section (markdown, figures linked) into this page, e.g. RESULTS.md")
def report(study, overrides, tracking_uri, fmt, out, results):
    """Mean ± std over seeds per cell, comparisons with the reference cell, plots."""
    from pathlib import Path

    from .analysis.report import study_report
    from .tracking import Tracker, resolve_tracking_uri

    spec = _load(study, overrides)
    out_dir = Path(out) if out else spec.directory / "report"
    result = study_report(spec, tracking_uri=tracking_uri, out_dir=out_dir, fmt=fmt)
    click.echo(result.text)
    if any(cell.seeds for cell in result.cells):
        tracker = Tracker(resolve_tracking_uri(spec, tracking_uri), spec.experiment, system_metrics=False)
        tracker.log_parent_artifacts(tracker.parent_run_id(spec.name), result.files)
    if results:
        from .analysis.results_page import write_results_section

        write_results_section(result, out_dir, Path(results), spec.overrides)
        click.echo(f"section '{spec.name}' written to {results}", err=True)
    click.echo(f"tables and plots: {out_dir}", err=True)


def _add_analyze() -> None:
    from .cli_analyze import analyze

    cli.add_command(analyze)


_add_analyze()


@contextlib.contextmanager
def _stop_on_first_interrupt(trainer):
    """First Ctrl-C: stop after the current step (the last epoch's checkpoint is kept);
    a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        trainer.stop_requested = True
        signal.signal(signal.SIGINT, previous)
        click.echo("\nstopping after this step; press Ctrl-C again to stop at once", err=True)

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv=None) -> int:
    """Entry point: one-line errors with exit code 2 for every user mistake."""
    from .errors import UserInputError

    try:
        cli.main(args=argv, prog_name="ablate", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"error: {_one_line(exc.format_message())}", err=True)
        return EXIT_USER_ERROR
    except UserInputError as exc:
        click.echo(f"error: {_one_line(exc)}", err=True)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
