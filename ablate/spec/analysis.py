"""The `analysis:` block: which analyses run on every trial, with what settings, and the
CKA reference of each. `ablate analyze` takes the same settings.

    analysis:
      probes: {}                 # or true; linear probes on every layer
      cka:
        reference: {rule: bp}    # CKA of every trial to this cell, same seed
        samples: 2000            # first n test examples, in order, un-augmented

Every choice that changes a number (reduction, n, estimator) is recorded with it.

The reference is named by settings (e.g. `reference: {rule: bp}`): a trial's reference is
the trial with the same seed whose settings are the trial's with those replaced, resolved
like any cell (keys its rule ignores fall back to their defaults). A reference cell the
grid does not list is added to the study, so that it is trained too.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import validation_text
from .cells import Trial, resolve_cell, seeded_trial
from .settings import Given, check_factor_name, read_given
from .wording import did_you_mean
from .yaml_lines import Source

REDUCTION_PATTERN = re.compile(r"gap|flatten|pool([1-9][0-9]*)")


def check_reduction(value: str) -> str:
    if not isinstance(value, str) or not REDUCTION_PATTERN.fullmatch(value):
        raise ValueError(f"reduction {value!r} is not one of gap (global average pool), poolS "
                         "(adaptive average pool to S×S, e.g. pool2) or flatten")
    return value


class ProbeSettings(BaseModel):
    """Linear probes: one multinomial logistic regression per layer on frozen features."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reduction: str = Field("gap", description="gap | poolS | flatten: how a conv layer's output becomes a vector")
    train_examples: int = Field(10_000, ge=20, description="un-augmented training examples the probes fit on")
    test_examples: int | None = Field(None, ge=1, description="test examples scored (default: all)")
    batch_size: int = Field(500, ge=1)

    _reduction = field_validator("reduction")(check_reduction)


class CKASettings(BaseModel):
    """Linear CKA between every layer of a trial's network and its reference's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: dict[str, Any] = Field(description="the reference cell's settings, e.g. {rule: bp}")
    samples: int = Field(2000, ge=8, description="first n test examples, in order, un-augmented")
    reduction: str = Field("flatten", description="gap | poolS | flatten")
    estimator: Literal["minibatch", "debiased", "biased"] = "minibatch"
    batch_size: int = Field(500, ge=4, description="minibatch size of the streaming estimator")

    _reduction = field_validator("reduction")(check_reduction)


class AnalysisSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    probes: ProbeSettings | None = None
    cka: CKASettings | None = None

    @field_validator("probes", mode="before")
    @classmethod
    def _probes_switch(cls, value):
        if value is True:
            return {}
        return None if value is False else value


_KEYS = {"analysis": tuple(AnalysisSettings.model_fields), "probes": tuple(ProbeSettings.model_fields),
         "cka": tuple(CKASettings.model_fields)}


def read_analysis(source: Source, analysis) -> AnalysisSettings | None:
    if analysis is None:
        return None
    block = source.mapping(analysis, ("analysis",), "analysis")
    try:
        settings = AnalysisSettings(**block)
    except pydantic.ValidationError as err:
        error = err.errors()[0]
        path = ("analysis",) + tuple(str(part) for part in error["loc"])
        message = validation_text(error)
        if error["type"] == "missing":
            message = f"'{path[-1]}' is required here" + (" (e.g. reference: {rule: bp})" if path[-1] == "reference"
                                                          else "")
        if error["type"] == "extra_forbidden":
            message = "unknown analysis key" + did_you_mean(path[-1], _KEYS.get(path[-2], ()))
        raise source.error(_known_prefix(source, path), message) from None
    if settings.cka is not None:
        for key, value in settings.cka.reference.items():
            path = ("analysis", "cka", "reference", key)
            check_factor_name(source, key, path)
            read_given(source, key, value, path)
    return settings


def reference_trials(source: Source, settings: AnalysisSettings | None, fixed: dict[str, Given],
                     trials: tuple[Trial, ...], varied: tuple[str, ...],
                     ties: dict) -> tuple[dict[str, Trial], tuple[Trial, ...]]:
    """({trial key: its reference trial}, reference trials the study does not list)."""
    if settings is None or settings.cka is None:
        return {}, ()
    path = ("analysis", "cka", "reference")
    wanted = {key: read_given(source, key, value, path + (key,)) for key, value in settings.cka.reference.items()}
    keys = tuple(dict.fromkeys([*varied, *wanted]))
    listed = {trial.key for trial in trials}
    references, extra = {}, {}
    for trial in trials:
        chosen = {key: Given(value, path) for key, value in trial.factors.items()}
        config, factors = resolve_cell(source, fixed, {**chosen, **wanted}, keys, ties)
        reference = seeded_trial(config, factors, trial.seed)
        references[trial.key] = reference
        if reference.key not in listed:
            extra.setdefault(reference.key, reference)
    references.update({key: trial for key, trial in extra.items()})  # an added reference is its own
    return references, tuple(extra.values())


def _known_prefix(source: Source, path: tuple) -> tuple:
    """The longest part of `path` that has a line in the file (pydantic names nested fields)."""
    while len(path) > 1 and source.line(path) is None:
        path = path[:-1]
    return path
