"""The AugLocal − BP gap against the training budget: for a study whose cells vary the
rule (bp and auglocal) and the budget (epochs, train_subset), the paired difference of
final test accuracy at each budget, with its 95% interval (ablate.report.statistics),
and where the gap stops moving by more than its interval."""

from __future__ import annotations

from dataclasses import dataclass

from ..rules import AUGLOCAL, BP
from .statistics import Comparison, compare
from .summary import COMPARED, CellSummary, cell_label, plain

BUDGET_KEYS = ("epochs", "train_subset")


@dataclass(frozen=True)
class Gap:
    budget: dict  # the factors other than the rule, e.g. {"epochs": 4, "train_subset": 18000}
    comparison: Comparison  # AugLocal − BP, percentage points

    @property
    def label(self) -> str:
        return cell_label(self.budget, "fixed budget")

    @property
    def examples(self) -> float | None:
        """Training examples seen (epochs × images), when the budget names both."""
        if all(key in self.budget for key in BUDGET_KEYS):
            return float(self.budget["epochs"]) * float(self.budget["train_subset"])
        return None


def budget_gaps(cells: list[CellSummary]) -> list[Gap]:
    """AugLocal − BP at each combination of the other factors where both rules ran,
    in order of training examples seen; empty unless the study varies a budget key."""
    by_budget: dict[str, dict] = {}
    for cell in cells:
        rule = cell.factors.get("rule")
        others = {k: v for k, v in cell.factors.items() if k != "rule"}
        if rule in (BP, AUGLOCAL) and cell.seeds and any(k in others for k in BUDGET_KEYS):
            key = repr(sorted((k, plain(v)) for k, v in others.items()))
            by_budget.setdefault(key, {"budget": others})[rule] = cell
    gaps = [Gap(entry["budget"], compare(entry[AUGLOCAL].values[COMPARED.name], entry[BP].values[COMPARED.name],
                                         entry[BP].cell_id))
            for entry in by_budget.values() if {BP, AUGLOCAL} <= set(entry)]
    return sorted(gaps, key=lambda g: (g.examples is None, g.examples or 0.0))


def settled_at(gaps: list[Gap]) -> Gap | None:
    """The smallest budget from which on the gap moves, from one budget to the next, by
    less than the half-width of either interval (the narrower); None when no budget
    settles it."""
    for i, gap in enumerate(gaps[:-1]):
        later = gaps[i:]
        if any(g.comparison.ci_low is None for g in later):
            continue
        if all(abs(b.comparison.diff - a.comparison.diff) <= min(_half(a), _half(b)) for a, b in zip(later, later[1:])):
            return gap
    return None


def _half(gap: Gap) -> float:
    return (gap.comparison.ci_high - gap.comparison.ci_low) / 2
