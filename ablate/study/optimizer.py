"""The Optuna study behind a study file: what it optimises and, for searches (`search:`
in the file), the sampler that picks settings and the pruner that stops trials whose best
validation accuracy so far falls behind. Grid studies sample nothing."""

from __future__ import annotations

import optuna

from ..spec import StudySpec
from ..urls import mask_url
from .storage import StudyStorageError
from .store import TrialStore

GRID_DIRECTIONS = ("maximize",)  # best validation accuracy (final test accuracy without a validation split)


def open_study(store: TrialStore, spec: StudySpec, sampler_seed: int) -> optuna.Study:
    """The Optuna study named after `spec` in `store` (created if new); a study of that
    name that optimises something else is a StudyStorageError. Retried through an
    outage: creating loads the study when it exists already."""
    study = store.patient(optuna.create_study, storage=store.storage, study_name=spec.name,
                          directions=_directions(spec), sampler=_sampler(spec, sampler_seed), pruner=_pruner(spec),
                          load_if_exists=True)
    found = [d.name.lower() for d in study.directions]
    if found != _directions(spec):
        raise StudyStorageError(
            f"the Optuna storage {mask_url(store.url)} holds a study {spec.name!r} that optimises {found}, but the study "
            f"file asks for {_directions(spec)}; give the study another 'name:' or another storage")
    return study


def suggest(asked: optuna.Trial, key: str, param: dict):
    """The sampler's value for one `search.params` entry."""
    if param["kind"] == "categorical":
        return asked.suggest_categorical(key, param["choices"])
    if param["kind"] == "int":
        return asked.suggest_int(key, param["low"], param["high"], step=param["step"] or 1, log=param["log"])
    return asked.suggest_float(key, param["low"], param["high"], step=param["step"], log=param["log"])


def _directions(spec: StudySpec) -> list[str]:
    if spec.search is None:
        return list(GRID_DIRECTIONS)
    return [direction for _, direction in spec.search.objectives]


def _sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler | None:
    if spec.search is None:
        return None
    make = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
            "nsga2": optuna.samplers.NSGAIISampler}[spec.search.sampler]
    return make(seed=seed)


def _pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    search = spec.search
    if search is None or search.pruner is None:
        return optuna.pruners.NopPruner()
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_warmup_steps=1)
    return optuna.pruners.HyperbandPruner(min_resource=1)
