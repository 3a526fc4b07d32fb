"""Naming a finished run on the command line: by MLflow run id, or within a study by
trial key (`<cell id>-s<seed>`), cell id, or factor values (`rule=bp,aux_depth=3`); a
cell without a seed means the study's first seed unless --seed says otherwise."""

from __future__ import annotations

import re

import yaml

from .. import tracking
from ..errors import UserInputError

RUN_ID = re.compile(r"[0-9a-f]{32}")
TRIAL_KEY = re.compile(r"(?P<cell>[0-9a-f]{12})-s(?P<seed>\d+)")
CELL_ID = re.compile(r"[0-9a-f]{12}")


class RunLookupError(UserInputError):
    """A run name that matches no finished run, or several."""


def find_run(text: str, *, tracking_uri: str, spec=None, seed: int | None = None) -> str:
    """The MLflow run id that `text` names."""
    if RUN_ID.fullmatch(text):
        return text
    if spec is None:
        raise RunLookupError(f"{text!r} is not an MLflow run id (32 hex digits); to name a run by its cell, "
                             "give the study with --study")
    runs = tracking.latest_finished(tracking_uri, spec.experiment, spec.name)
    key = _trial_key(text, spec, seed)
    if key not in runs:
        raise RunLookupError(f"trial {key} of study {spec.name} has no finished run; `ablate status "
                             f"{spec.path}` shows what is done")
    return runs[key].run_id


def _trial_key(text: str, spec, seed: int | None) -> str:
    match = TRIAL_KEY.fullmatch(text)
    if match:
        return text
    seed = spec.seeds[0] if seed is None else seed
    if CELL_ID.fullmatch(text):
        if text not in dict(spec.cells()):
            raise RunLookupError(f"study {spec.name} has no cell {text}; `ablate run {spec.path} --dry-run` lists them")
        return f"{text}-s{seed}"
    wanted = _factor_values(text)
    cells = [cell for cell, factors in spec.cells() if all(factors.get(k) == v for k, v in wanted.items())]
    if len(cells) != 1:
        found = "no cell" if not cells else f"{len(cells)} cells ({', '.join(cells)})"
        raise RunLookupError(f"{text!r} matches {found} of study {spec.name}; name one cell by its factors "
                             "(e.g. rule=bp,aux_depth=3), its cell id or its trial key")
    return f"{cells[0]}-s{seed}"


def _factor_values(text: str) -> dict:
    values = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise RunLookupError(f"{text!r} is neither a run id, a trial key, a cell id nor factor values "
                                 "such as rule=bp,aux_depth=3")
        values[key.strip()] = yaml.safe_load(value)
    return values
