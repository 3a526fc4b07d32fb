"""The `analysis:` block: which analyses run on every trial, and the CKA reference of each.

The reference is named by settings (e.g. `reference: {rule: bp}`): a trial's reference is
the trial with the same seed whose settings are the trial's with those replaced, resolved
like any cell (keys its rule ignores fall back to their defaults). A reference cell the
grid does not list is added to the study, so that it is trained too.
"""

from __future__ import annotations

import pydantic

from ..errors import validation_text
from ..analysis.settings import AnalysisSettings, CKASettings, ProbeSettings
from .cells import Trial, resolve_cell, seeded_trial
from .settings import Given, check_factor_name, read_given
from .wording import did_you_mean
from .yaml_lines import Source

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
