"""Factor effects of a grid study: which factor moves a quantity, by how much, with what
uncertainty — estimated across all cells rather than cell by cell.

Model (statsmodels OLS, treatment coding): for a quantity y and a factor F,
    y ~ C(F) + C(every other factor present in the same cells) + C(seed)
over every finished trial of the cells where F means something (a tied factor only where
its tie holds), seeds as blocks. The effect of each level of F is its coefficient: the
difference from F's first level with the other factors held fixed, with its 95% interval,
p-value and standardised size (effect / residual std). In a balanced grid it equals the
difference of the level's marginal mean from the first level's. Each training counts
once: an alias cell (the same networks as another cell) is left out.

Interactions: two factors are crossed where every pair of their levels occurs; on that
part of the grid, y ~ C(A) * C(B) + others + C(seed), and the interaction's F-test from
the type-II ANOVA (statsmodels `anova_lm`). p-values are Holm-corrected over all effects
and interactions of one quantity.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm

from .statistics import LEVEL, holm
from .summary import COLUMNS, CellSummary, plain

EFFECT_COLUMNS = tuple(c for c in COLUMNS if c.name in
                       ("final_test_acc_pct", "peak_memory_mib", "aux_mflops", "time_per_epoch_s"))


@dataclass(frozen=True)
class Effect:
    quantity: str  # a Column name
    factor: str
    level: object
    baseline: object  # the factor's first level, which the effect is measured from
    estimate: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    size: float | None  # estimate / residual std; None without residual spread
    marginal: float  # mean over this level's cells minus the baseline level's (of the cell means)
    n: int  # trials in the model
    p_holm: float | None = None


@dataclass(frozen=True)
class Interaction:
    quantity: str
    factors: tuple[str, str]
    f_value: float | None
    p_value: float | None
    n: int
    cells: int
    p_holm: float | None = None


@dataclass(frozen=True)
class Effects:
    effects: list[Effect]
    interactions: list[Interaction]
    means: dict  # (factor a, factor b) -> {(level a, level b): mean of the quantity over cells}, for the figure


def trial_rows(cells: list[CellSummary]) -> pd.DataFrame:
    """One row per finished trial of a trained (not alias) cell: its factors, seed, cell
    and every effect quantity."""
    rows = []
    for cell in cells:
        if cell.same_as is not None:
            continue
        for seed in cell.seeds:
            row = {"_cell": cell.cell_id, "_seed": seed, **{f"f:{k}": _level(v) for k, v in cell.factors.items()}}
            for col in EFFECT_COLUMNS:
                row[col.name] = cell.values[col.name].get(seed)
            rows.append(row)
    return pd.DataFrame(rows)


def _level(value):
    value = plain(value)
    return str(value) if isinstance(value, (list, dict)) else value


def estimate_effects(cells: list[CellSummary]) -> Effects | None:
    """Main effects and interactions of every factor with two levels or more; None when
    the study varies nothing across trained cells."""
    data = trial_rows(cells)
    if data.empty:
        return None
    factors = [c[2:] for c in data.columns if c.startswith("f:") and data[c].dropna().nunique() >= 2]
    factors, names = _unconfounded(data, factors)
    data = data.drop(columns=[f"f:{f}" for f in names if f not in factors])  # kept only under their twin's name
    if not factors:
        return None
    effects, interactions, means = [], [], {}
    for col in EFFECT_COLUMNS:
        found = [e for factor in factors for e in _main_effects(data, col.name, factor)]
        pairs = []
        for a, b in itertools.combinations(factors, 2):
            inter = _interaction(data, col.name, a, b)
            if inter is not None:
                pairs.append(inter[0])
                if col.name == EFFECT_COLUMNS[0].name:
                    means[(a, b)] = inter[1]
        adjusted = holm([e.p_value for e in found] + [i.p_value for i in pairs])
        effects += [_with(e, p) for e, p in zip(found, adjusted[:len(found)])]
        interactions += [_with(i, p) for i, p in zip(pairs, adjusted[len(found):])]
    effects = [Effect(**{**e.__dict__, "factor": names[e.factor]}) for e in effects]
    interactions = [Interaction(**{**i.__dict__, "factors": tuple(names[f] for f in i.factors)}) for i in interactions]
    return Effects(effects, interactions, {tuple(names[f] for f in k): v for k, v in means.items()})


def _unconfounded(data: pd.DataFrame, factors: list[str]) -> tuple[list[str], dict[str, str]]:
    """The factors whose levels do not follow one-to-one from an earlier factor's over
    the trials, and their names: a factor that always moves with another (a budget ladder
    of epochs and images) cannot be told apart from it, so both are one factor, "a+b"."""
    kept, names = [], {}
    for factor in factors:
        column = data[f"f:{factor}"].map(repr)
        twin = next((k for k in kept if (data[f"f:{k}"].map(repr) + "|" + column).nunique()
                     == data[f"f:{k}"].map(repr).nunique() == column.nunique()), None)
        if twin is None:
            kept.append(factor)
            names[factor] = factor
        else:
            names[twin] += f"+{factor}"
            names[factor] = names[twin]
    return kept, names


def _with(item, p_holm):
    return type(item)(**{**item.__dict__, "p_holm": p_holm})


def _model_data(data: pd.DataFrame, quantity: str, needed: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The trials that have `quantity` and every factor of `needed`, and the other factors
    present in all of them that still vary."""
    keep = data[quantity].notna()
    for factor in needed:
        keep &= data[f"f:{factor}"].notna()
    sub = data[keep]
    others = [c[2:] for c in sub.columns if c.startswith("f:") and c[2:] not in needed
              and sub[c].notna().all() and sub[c].nunique() >= 2]
    return sub, others


def _frame(sub: pd.DataFrame, quantity: str, factors: list[str]) -> pd.DataFrame:
    """A frame with formula-safe column names: y, x0, x1, … (levels as text), seed."""
    frame = pd.DataFrame({"y": sub[quantity].astype(float).to_numpy(), "seed": sub["_seed"].astype(str).to_numpy()})
    for i, factor in enumerate(factors):
        frame[f"x{i}"] = sub[f"f:{factor}"].map(str).to_numpy()
    return frame


def _terms(factors: list[str], baselines: dict[int, str], blocks: bool) -> list[str]:
    terms = [f"C(x{i}, Treatment({baselines[i]!r}))" if i in baselines else f"C(x{i})" for i in range(len(factors))]
    return terms + (["C(seed)"] if blocks else [])


def _fit(formula: str, frame: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a quantity without residual spread (FLOPs): zero scale, said as None
        return smf.ols(formula, frame).fit()


def _main_effects(data: pd.DataFrame, quantity: str, factor: str) -> list[Effect]:
    sub, others = _model_data(data, quantity, [factor])
    levels = list(dict.fromkeys(sub[f"f:{factor}"]))
    if len(levels) < 2:
        return []
    frame = _frame(sub, quantity, [factor, *others])
    baseline = str(levels[0])
    blocks = frame["seed"].nunique() >= 2
    fit = _fit("y ~ " + " + ".join(_terms([factor, *others], {0: baseline}, blocks)), frame)
    residual = math.sqrt(fit.scale) if fit.df_resid > 0 and fit.scale > 1e-12 else None
    cell_means = sub.groupby("_cell").agg(level=(f"f:{factor}", "first"), y=(quantity, "mean"))
    marginal = cell_means.groupby("level", sort=False)["y"].mean()
    found = []
    for level in levels[1:]:
        name = f"C(x0, Treatment({baseline!r}))[T.{level}]"
        if name not in fit.params:
            continue
        estimate = float(fit.params[name])
        low = high = p = None
        if residual is not None:
            interval = fit.conf_int(1 - LEVEL).loc[name]
            low, high, p = float(interval[0]), float(interval[1]), float(fit.pvalues[name])
        found.append(Effect(quantity, factor, level, levels[0], estimate, low, high, p,
                            estimate / residual if residual else None,
                            float(marginal[level] - marginal[levels[0]]), len(frame)))
    return found


def _interaction(data: pd.DataFrame, quantity: str, a: str, b: str) -> tuple[Interaction, dict] | None:
    """The A × B interaction on the part of the grid where A and B are crossed; None
    where they are not (fewer than two levels each once every pair must occur)."""
    sub, _ = _model_data(data, quantity, [a, b])
    if sub.empty:
        return None
    b_levels = set(sub[f"f:{b}"])
    crossed = [lv for lv in dict.fromkeys(sub[f"f:{a}"]) if set(sub[sub[f"f:{a}"] == lv][f"f:{b}"]) == b_levels]
    sub = sub[sub[f"f:{a}"].isin(crossed)]
    if len(crossed) < 2 or len(b_levels) < 2:
        return None
    _, others = _model_data(sub, quantity, [a, b])
    frame = _frame(sub, quantity, [a, b, *others])
    blocks = frame["seed"].nunique() >= 2
    terms = _terms([a, b, *others], {}, blocks)
    fit = _fit("y ~ " + " + ".join([f"{terms[0]} * {terms[1]}", *terms[2:]]), frame)
    f_value = p = None
    if fit.df_resid > 0 and fit.scale > 1e-12:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = anova_lm(fit, typ=2)
        row = table.loc["C(x0):C(x1)"]
        if np.isfinite(row["F"]):
            f_value, p = float(row["F"]), float(row["PR(>F)"])
    means = sub.groupby("_cell").agg(a=(f"f:{a}", "first"), b=(f"f:{b}", "first"), y=(quantity, "mean"))
    table_means = {(ra, rb): float(y) for ra, rb, y in means.groupby(["a", "b"], sort=False)["y"].mean().reset_index()
                   .itertuples(index=False)}
    return Interaction(quantity, (a, b), f_value, p, len(frame), sub["_cell"].nunique()), table_means
