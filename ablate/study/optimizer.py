"""The Optuna study behind a study file: what it optimises and, for searches (`search:`
in the file), the sampler that picks settings and the pruner that stops trials whose best
validation accuracy so far falls behind. Grid studies sample nothing."""

from __future__ import annotations

import warnings

import optuna
from optuna.distributions import CategoricalDistribution

from ..spec import StudySpec
from ..urls import mask_url
from .storage import StudyStorageError
from .store import TrialStore

GRID_DIRECTIONS = ("maximize",)  # best validation accuracy (final test accuracy without a validation split)
GRID_METRICS = ("best_val_acc",)  # a fraction, as Optuna keeps it; final_test_acc without a validation split


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
    with warnings.catch_warnings():  # "experimental" since Optuna 3.2, and what the dashboard reads
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if study.metric_names != metric_names(spec):  # optuna-dashboard shows these, not "Objective 0"
            store.patient(study.set_metric_names, metric_names(spec))
    return study


def metric_names(spec: StudySpec) -> list[str]:
    """What the trials' values are, as optuna-dashboard labels them."""
    if spec.search is None:
        return list(GRID_METRICS)
    return [metric for metric, _ in spec.search.objectives]


def grid_distributions(spec: StudySpec) -> dict[str, CategoricalDistribution]:
    """Each factor of a grid study as an Optuna categorical parameter over the values its
    cells take (lists shown as text: Optuna's choices are scalars), so that
    optuna-dashboard's History, Slice, Parallel coordinate and Importance show the grid."""
    values: dict[str, list] = {}
    for trial in spec.trials:
        for key, value in trial.factors.items():
            values.setdefault(key, [])
            if param_value(value) not in values[key]:
                values[key].append(param_value(value))
    return {key: CategoricalDistribution(choices) for key, choices in values.items()}


def param_value(value):
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(list(value))


def set_grid_params(store: TrialStore, trial_id: int, factors: dict,
                    distributions: dict[str, CategoricalDistribution]) -> None:
    """A claimed grid trial's factors as its Optuna params (retried: setting a param to the
    value it has changes nothing)."""
    for key, value in factors.items():
        distribution = distributions[key]
        store.patient(store.storage.set_trial_param, trial_id, key,
                      distribution.to_internal_repr(param_value(value)), distribution)


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
