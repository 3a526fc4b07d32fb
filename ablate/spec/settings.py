"""One setting at a time: names and values checked against TrainConfig's own field
definitions; what each rule ignores comes from its RuleSpec (ablate.rules)."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

import pydantic

from ..config import EXECUTION_ONLY, TrainConfig
from ..errors import BOUND_ERRORS, validation_text
from ..rules import RULES
from .wording import did_you_mean, show, unknown_choice
from .yaml_lines import Location, Source

SETTINGS = tuple(k for k in TrainConfig.model_fields if k != "seed")
# EXECUTION_ONLY (config.py): how to run, not what is trained; left out of cell ids, and never a factor.


def ignored_by(rule: str) -> frozenset[str]:
    """The settings that do not change what rule `rule` trains."""
    return RULES[rule].ignores


@dataclass(frozen=True)
class Given:
    value: Any  # validated and normalised (TrainConfig's type)
    path: Location  # where it came from; ("override", key) for load_study's overrides


def default(key: str):
    return TrainConfig.model_fields[key].default


def value_or_default(given: dict[str, Given], key: str):
    return given[key].value if key in given else default(key)


def read_given(source: Source, key: str, value, path: Location) -> Given:
    return Given(field_value(source, key, value, path), path)


def field_value(source: Source, key: str, value, path: Location):
    """The value of setting `key` as TrainConfig holds it; SpecError naming the key otherwise."""
    if isinstance(value, list):
        value = tuple(value)
    try:
        return _adapter(key).validate_python(value, strict=True)
    except pydantic.ValidationError as err:
        raise source.error(path, _field_problem(key, value, err.errors()[0])) from None


def check_setting_name(source: Source, key, path: Location) -> None:
    if not isinstance(key, str):
        raise source.error(path[:-1], f"{show(key)} is not a setting name")
    if key == "seed":
        raise source.error(path, "seeds are given by the top-level 'seeds: [...]' list")
    if key not in SETTINGS:
        raise source.error(path, "unknown setting" + did_you_mean(key, SETTINGS))


def check_factor_name(source: Source, key, path: Location) -> None:
    check_setting_name(source, key, path)
    if key in EXECUTION_ONLY:
        raise source.error(path, f"{key} says how to run, not what to train, so it cannot vary "
                                 "between cells; put it in settings")


def read_settings(source: Source, settings) -> dict[str, Given]:
    """The 'settings:' block: the fixed settings of every cell."""
    settings = source.mapping(settings, ("settings",), "settings")
    fixed = {}
    for key, value in settings.items():
        path = ("settings", key)
        check_setting_name(source, key, path)
        fixed[key] = read_given(source, key, value, path)
    return fixed


def read_overrides(source: Source, overrides: dict, varied: tuple[str, ...]) -> dict[str, Given]:
    """load_study's overrides: fixed settings set over the file's."""
    given = {}
    for key, value in overrides.items():
        path = ("override", key)
        check_setting_name(source, key, path)
        if key in varied:
            raise source.error(path, f"{key} varies between this study's cells; it cannot be fixed "
                                     "by an override (edit the study instead)")
        given[key] = read_given(source, key, value, path)
    return given


@cache
def _adapter(key: str) -> pydantic.TypeAdapter:
    info = TrainConfig.model_fields[key]
    # TrainConfig's model-wide allow_inf_nan=False does not travel with a single field
    return pydantic.TypeAdapter(Annotated[info.annotation, info], config=pydantic.ConfigDict(allow_inf_nan=False))


_UnionType = type(int | None)


def _field_problem(key: str, value, error: dict) -> str:
    if error["type"] == "literal_error":
        options = typing.get_args(TrainConfig.model_fields[key].annotation)
        return unknown_choice(key, value, options)
    if error["type"] in ("value_error", "finite_number") or error["type"] in BOUND_ERRORS:
        return validation_text({**error, "input": value})
    return f"expected {_expected(key)}, got {show(value)}"


def _expected(key: str) -> str:
    annotation = TrainConfig.model_fields[key].annotation
    optional = typing.get_origin(annotation) in (typing.Union, _UnionType) and type(None) in typing.get_args(annotation)
    if optional:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is typing.Literal:
        text = "one of " + ", ".join(typing.get_args(annotation))
    elif typing.get_origin(annotation) is tuple:
        text = "a list of integers"
    else:
        names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        text = names.get(annotation, "a valid value")
    return text + (" or null" if optional else "")
