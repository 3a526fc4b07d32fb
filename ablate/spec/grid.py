"""Grid studies: the grid:, tie: and cells: blocks, expanded to every distinct cell × seed."""

from __future__ import annotations

import itertools
import math

from ..config import TrainConfig
from .cells import CellEntry, Trial, cell_id, resolve_cell, seeded_trial, training_id
from .settings import Given, check_factor_name, field_value, read_given, value_or_default
from .wording import did_you_mean, show
from .yaml_lines import Source

# cells x seeds as listed (before equal cells merge); a limit that keeps validating a
# study within seconds, far beyond any study one machine trains
MAX_TRIALS = 10_000


def read_grid(source: Source, grid, fixed: dict[str, Given]) -> dict[str, list[Given]]:
    """The 'grid:' block: {factor: its values}; the cells are their full product."""
    if grid is None:
        return {}
    grid = source.mapping(grid, ("grid",), "grid")
    if not grid:
        raise source.error(("grid",), "the grid is empty; give factors such as 'aux_depth: [1, 2]' or remove it")
    factors = {}
    for key, values in grid.items():
        path = ("grid", key)
        check_factor_name(source, key, path)
        if key in fixed:
            raise source.error(path, f"{key} is both a grid factor and fixed in settings "
                                     f"(line {source.line(fixed[key].path)}); remove one")
        if not isinstance(values, list):
            raise source.error(path, f"a grid factor is a list of values, got {show(values)}; "
                                     "a single value belongs in settings")
        if not values:
            raise source.error(path, "the list is empty; give at least one value")
        given = []
        for index, value in enumerate(values):
            item = read_given(source, key, value, path + (index,))
            if any(g.value == item.value for g in given):
                raise source.error(item.path, f"value {show(value)} is listed twice")
            given.append(item)
        factors[key] = given
    return factors


def read_ties(source: Source, tie, grid: dict[str, list[Given]]) -> dict[str, dict[str, tuple]]:
    """{tied factor: {condition factor: allowed values}}: the tied factor varies only in
    cells where every condition factor takes one of its allowed values."""
    if tie is None:
        return {}
    tie = source.mapping(tie, ("tie",), "tie")
    ties = {}
    for key, condition in tie.items():
        path = ("tie", key)
        if key not in grid:
            raise source.error(path, "only a grid factor can be tied" + did_you_mean(key, grid))
        condition = source.mapping(condition, path, "a tie")
        if not condition:
            raise source.error(path, "the condition is empty; write e.g. '{decay: [linear]}'")
        ties[key] = {}
        for other, allowed in condition.items():
            where = path + (other,)
            if other == key:
                raise source.error(where, "a factor cannot be tied to itself")
            if other not in grid:
                raise source.error(where, "a tie's condition names a grid factor" + did_you_mean(other, grid))
            if other in tie:
                raise source.error(where, f"{other} is tied itself; tie to factors that are not tied")
            allowed = allowed if isinstance(allowed, list) else [allowed]
            values = []
            for index, value in enumerate(allowed):
                at = where + (index,) if isinstance(condition[other], list) else where
                value = field_value(source, other, value, at)
                if value not in [g.value for g in grid[other]]:
                    raise source.error(at, f"{show(value)} is not among the grid's values of {other} "
                                           f"({', '.join(show(g.value) for g in grid[other])})")
                values.append(value)
            ties[key][other] = tuple(values)
    return ties


def read_cells(source: Source, cells) -> list[dict[str, Given]]:
    """The 'cells:' block: explicit cells, each merged over the fixed settings."""
    if cells is None:
        return []
    if not isinstance(cells, list) or not cells:
        raise source.error(("cells",), f"expected a non-empty list of mappings such as "
                                       f"'- {{rule: bp}}', got {show(cells)}")
    parsed = []
    for index, cell in enumerate(cells):
        path = ("cells", index)
        cell = source.mapping(cell, path, "a cell")
        if not cell:
            raise source.error(path, "the cell is empty; it would repeat settings")
        given = {}
        for key, value in cell.items():
            check_factor_name(source, key, path + (key,))
            given[key] = read_given(source, key, value, path + (key,))
        parsed.append(given)
    return parsed


def _check_ties(source: Source, fixed: dict, cell: dict[str, Given], ties: dict) -> None:
    """An explicit cell that sets a tied factor where its tie does not hold contradicts
    the tie (the value would be dropped silently)."""
    given = {**fixed, **cell}
    for key, condition in ties.items():
        if key not in cell:
            continue
        for other, allowed in condition.items():
            value = value_or_default(given, other)
            if value not in allowed:
                raise source.error(cell[key].path, f"{key} is tied to {other} in {show(list(allowed))}, but this "
                                                   f"cell has {other} {show(value)}; drop {key} from the cell or "
                                                   "change the tie")


def expand(source: Source, fixed: dict, grid: dict, ties: dict, cells: list, varied: tuple,
           seeds: tuple[int, ...]) -> tuple[tuple[Trial, ...], tuple[CellEntry, ...]]:
    """Every distinct cell (the grid's, then the explicit ones) × seed, seeds inner, and
    every cell as listed; a cell that trains the same networks as an earlier one (same
    training id) is an alias of it and has no trials of its own. Every grid factor must
    mean something in some cell."""
    count = math.prod(len(values) for values in grid.values()) if grid else 0
    if (count + len(cells)) * len(seeds) > MAX_TRIALS:
        raise source.error(("grid",) if grid else ("cells",),
                           f"{count + len(cells):,} cells x {len(seeds):,} seeds is more than {MAX_TRIALS:,} trials, "
                           "the limit of a study; split it into several studies or vary fewer factors")
    for cell in cells:
        _check_ties(source, fixed, cell, ties)
    grid_cells = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] if grid else []
    resolved: dict[str, tuple[TrainConfig, dict]] = {}
    for chosen in grid_cells + cells:
        config, factors = resolve_cell(source, fixed, chosen, varied, ties)
        resolved.setdefault(cell_id(config), (config, factors))
    trained: dict[str, str] = {}  # training id -> the first cell id that trains it
    layout = []
    for identity, (config, factors) in resolved.items():
        trained_as = trained.setdefault(training_id(config, seeds), identity)
        layout.append(CellEntry(identity, factors, trained_as))
    trials = tuple(seeded_trial(*resolved[entry.cell_id], seed, entry.cell_id) for entry in layout
                   if not entry.alias for seed in seeds)
    for key in grid:
        if not any(key in entry.factors for entry in layout):
            raise source.error(("grid", key), f"{key} has no effect in any cell (every cell's rule ignores "
                                              "it or its tie never holds); remove it from the grid")
    return trials, tuple(layout)
