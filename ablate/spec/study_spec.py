"""What loading a study file produces: the StudySpec."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .analysis import AnalysisSettings
from .cells import CellEntry, Trial, resolve_cell, seeded_trial
from .search import SearchSpace
from .settings import Given, check_factor_name, read_given
from .yaml_lines import Source


@dataclass(frozen=True)
class StudySpec:
    name: str
    path: Path  # the study file, resolved
    directory: Path  # default home of the study's state: <file's folder>/runs/<name>/
    fixed: dict  # the fixed settings (overrides applied), validated; defaults fill the rest
    factors: tuple[str, ...]  # the keys that vary between cells (grid order, then cells')
    seeds: tuple[int, ...]
    trials: tuple[Trial, ...]  # grid: every cell × seed, seeds inner; search: ()
    layout: tuple[CellEntry, ...]  # grid: every cell as listed, aliases included; search: ()
    search: SearchSpace | None
    storage: str | None  # Optuna storage URL; None: the default
    tracking_uri: str | None  # MLflow tracking URI; None: the default
    experiment: str
    reference: dict | None  # the report's reference cell, as factor values
    analysis: AnalysisSettings | None  # what to analyse after each trial (the 'analysis:' block)
    references: dict = field(default_factory=dict)  # trial key -> its CKA reference Trial
    added_cells: frozenset = frozenset()  # cell ids not in the file, added as CKA references
    overrides: dict = field(default_factory=dict)  # what load_study's caller set over the file

    def cells(self) -> list[tuple[str, dict]]:
        """The distinct cells, (cell_id, factors), in order."""
        seen = {}
        for trial in self.trials:
            seen.setdefault(trial.cell_id, trial.factors)
        return list(seen.items())

    def aliases(self) -> dict[str, str]:
        """{cell id: the cell id it shares trials with} for the cells that train nothing."""
        return {entry.cell_id: entry.trained_as for entry in self.layout if entry.alias}

    def trial(self, values: dict, seed: int) -> Trial:
        """The trial of the fixed settings with `values` (e.g. a search's sampled point)
        over them. Raises SpecError when the combination cannot be trained."""
        source = Source(str(self.path), {})
        fixed = {k: Given(v, ("settings", k)) for k, v in self.fixed.items()}
        chosen = {}
        for key, value in values.items():
            where = ("search", "space", key)
            check_factor_name(source, key, where)
            chosen[key] = read_given(source, key, value, where)
        config, factors = resolve_cell(source, fixed, chosen, tuple(values), {})
        return seeded_trial(config, factors, seed)
