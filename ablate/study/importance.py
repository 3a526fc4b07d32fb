"""Parameter importances of a search study: Optuna's fANOVA over its finished trials
(this package is the only one that imports Optuna; the report asks it here)."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from ..spec import StudySpec
from .storage import open_storage, resolve_storage, storage_exists


def param_importances(spec: StudySpec, storage: str | None = None) -> dict[str, float]:
    """{parameter: importance for the first objective}, summing to 1, most important
    first; empty when the study has not run, or has fewer than two finished trials or no
    parameter that varied among them (fANOVA then has nothing to split)."""
    url = resolve_storage(spec, storage, 1)
    if spec.search is None or not storage_exists(url):
        return {}
    try:
        study = optuna.load_study(study_name=spec.name, storage=open_storage(url))
    except KeyError:  # the storage has no study of this name yet
        return {}
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    varied = {name for name in {n for t in done for n in t.params}
              if len({repr(t.params.get(name)) for t in done}) > 1}
    if len(done) < 2 or not varied:
        return {}
    # imported here: optuna.importance loads scikit-learn's ensembles, 1.0 to 1.3 s of every
    # process's start, for the one report of a search study that asks
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    # seeded, so that the same trials always give the same importances
    return dict(get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), params=sorted(varied),
                                      target=lambda t: t.values[0]))
