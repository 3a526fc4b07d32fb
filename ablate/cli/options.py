"""What the commands share: the user-error exception, options generated from a settings
model (so every setting is defined in exactly one place, TrainConfig), the study options,
and reading a study file with `--set` overrides."""

from __future__ import annotations

import types
import typing

import click
import pydantic

from ..config import TrainConfig
from ..errors import EXIT_USER_ERROR, validation_text
from ..spec import SpecError, StudySpec, load_study, parse_value
from ..urls import storage_problem, tracking_problem


class UserError(click.ClickException):
    exit_code = EXIT_USER_ERROR


def option_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def validated(settings_model: type[pydantic.BaseModel], /, **given):
    """`settings_model(**given)` with the options that were not given (None) left to
    their defaults; a UserError naming the option otherwise."""
    values = {k: v for k, v in given.items() if v is not None}
    try:
        return settings_model(**values)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "settings"
        raise UserError(f"{option_name(key)}: {validation_text(first)}") from None


_CLICK_TYPES = {int: int, float: float, str: str}


def field_option(model: type[pydantic.BaseModel], name: str, *, show_default: bool = False):
    """A click.option for one field of a settings model. With `show_default` the option
    carries the field's default (shown in --help), otherwise it defaults to None, which
    `validated` reads as "not given"."""
    info = model.model_fields[name]
    flag = option_name(name)
    annotation = info.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if show_default:
        common = {"default": info.default, "show_default": info.default is not None, "help": info.description}
    else:
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
    if value is None or isinstance(value, tuple):
        return value
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise UserError(f"--{param.name.replace('_', '-')}: expected comma-separated integers, got {value!r}") from None


def config_options(names=None, *, show_default: bool = False):
    """Options for the TrainConfig fields `names` (default: all of them)."""
    names = list(TrainConfig.model_fields) if names is None else list(names)

    def decorate(command):
        for name in reversed(names):
            command = field_option(TrainConfig, name, show_default=show_default)(command)
        return command
    return decorate


# ------------------------------------------------------------------------------ studies
study_argument = click.argument("study", type=click.Path(dir_okay=False))
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="override a fixed setting of the study file (repeatable), e.g. --set epochs=2")
def checked_url(problem):
    """A click callback refusing a URL option's value that `problem` (ablate.urls) rejects."""
    def check(ctx, param, value):
        reason = problem(value) if value else None
        if reason is not None:
            raise UserError(f"{param.opts[0]}: {reason}")
        return value
    return check


storage_option = click.option("--storage", default=None, envvar="ABLATE_STORAGE", callback=checked_url(storage_problem),
                              help="Optuna storage URL [default: the study file's, else beside the study]")
tracking_option = click.option("--tracking-uri", default=None, envvar="ABLATE_TRACKING_URI",
                               callback=checked_url(tracking_problem),
                               help="MLflow tracking URI [default: the study file's, else sqlite beside the study]")


def parse_overrides(pairs: tuple[str, ...]) -> dict:
    """`--set key=value` pairs, values read as YAML scalars (2, 0.1, true, null, linear)."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set epochs=2")
        try:
            overrides[key.strip()] = parse_value(value, "the value")
        except SpecError as err:
            raise UserError(f"--set {key.strip()}: {err}") from None
    return overrides


def read_study(study: str, overrides: tuple[str, ...] = ()) -> StudySpec:
    return load_study(study, parse_overrides(overrides))
