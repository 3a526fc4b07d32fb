"""What a report is made of: the reported quantities (Column), one cell's figures over its
seeds (CellSummary) and the whole report (Report)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserInputError
from .statistics import Comparison, Stat


class ReportError(UserInputError):
    """The report cannot be made as asked (e.g. the reference matches no cell)."""


@dataclass(frozen=True)
class Column:
    """One reported quantity: an MLflow metric, scaled to the unit in its title."""

    metric: str
    name: str  # CSV column stem, unit included
    title: str
    scale: float = 1.0
    digits: int = 2
    spread: bool = True  # False: the same in every seed (show the mean only)
    interval: bool = False  # the 95% CI in the markdown table too (every CI is in the CSV)
    percent: bool = False  # a percentage: its interval is computed on the logit scale, inside [0, 100]


COLUMNS = (
    Column("final_test_acc", "final_test_acc_pct", "final test acc (%)", 100.0, interval=True, percent=True),
    Column("best_test_acc", "best_val_test_acc_pct", "test acc at best val (%)", 100.0, interval=True,
           percent=True),
    Column("peak_memory_bytes_max", "peak_memory_mib", "peak memory (MiB)", 1 / 2**20, 1),
    Column("time_per_epoch_s", "time_per_epoch_s", "time/epoch (s)", 1.0, 2),
    Column("aux_flops", "aux_mflops", "aux MFLOPs/example", 1e-6, 2, spread=False),
)
COMPARED = COLUMNS[0]
MEMORY = COLUMNS[2]


def plain(value):
    """A factor value as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def cell_label(factors: dict, cell_id: str) -> str:
    return ", ".join(f"{k}={v}" for k, v in factors.items()) or f"cell {cell_id}"


@dataclass
class CellSummary:
    cell_id: str
    factors: dict
    seeds: list[int]  # seeds with a finished run
    expected_seeds: tuple[int, ...] | None
    values: dict[str, dict[int, float]]  # column name → {seed: value in the column's unit}
    stats: dict[str, Stat | None]
    comparison: Comparison | None = None
    same_as: str | None = None  # label of the cell whose trials this alias cell shares (the same networks)

    @property
    def label(self) -> str:
        return cell_label(self.factors, self.cell_id)

    @property
    def missing_seeds(self) -> list[int]:
        return [s for s in (self.expected_seeds or ()) if s not in self.seeds]

    @property
    def n_text(self) -> str:
        alias = f" · same network as {self.same_as}" if self.same_as else ""
        if not self.seeds:
            return "no finished runs" + alias
        if not self.missing_seeds:
            return str(len(self.seeds)) + alias
        missing = ", ".join(map(str, self.missing_seeds))
        return f"{len(self.seeds)} of {len(self.expected_seeds)}, missing seeds: {missing}" + alias


@dataclass
class Report:
    study: str
    cells: list[CellSummary]
    reference: dict | None
    seeds: tuple[int, ...] | None
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # tables and plots written to out_dir
    figures: list[tuple[str, Path]] = field(default_factory=list)  # per-layer analyses, linked in markdown
    claims: list = field(default_factory=list)  # claims.Claim: the paper's claims checked on these numbers
    settle: list[str] = field(default_factory=list)  # settle.py: what would settle each inconclusive claim
    commands: list[str] = field(default_factory=list)  # what reproduces every number
    budget: str = ""  # the training budget behind every number, e.g. "4 epochs × 18,000 training images"
    effects: object | None = None  # effects.Effects of a grid study
    gaps: list = field(default_factory=list)  # budget.Gap: AugLocal − BP at each budget
    importances: dict = field(default_factory=dict)  # search studies: {parameter: fANOVA importance}

    @property
    def reference_label(self) -> str:
        return cell_label(self.reference, "?") if self.reference else "none"

    @property
    def heading(self) -> str:
        seeds = (f"seeds {', '.join(map(str, self.seeds))} ({len(self.seeds)} per cell)"
                 if self.seeds is not None else "seeds as run")
        return f"Study {self.study} · {len(self.cells)} cells · {seeds} · reference: {self.reference_label}"
