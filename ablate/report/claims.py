"""The paper's claims, checked against a study's own numbers.

Each check applies when the study has the cells it needs (e.g. a `rule` factor with bp
and auglocal) and gives one of three verdicts from the 95% interval of the quantity the
claim is about: "agrees" when the whole interval is on the claim's side of its threshold,
"does not agree" when the whole interval is on the other side, and "inconclusive at this
budget" when the interval spans the threshold or there is none (fewer than three seeds).
The evidence names n, the interval and the training budget; the thresholds are stated in
every claim.

Claims (AugLocal, ICLR 2024):
  accuracy   AugLocal's accuracy is close to BP's (here: within 1 percentage point)
  ranking    AugLocal is ahead of the other local rules (DGL, InfoPro, PredSim)
  similarity AugLocal's hidden layers are more like BP's than other local rules' (CKA)
  memory     AugLocal holds less memory than BP
  depth      deeper auxiliary nets give more BP-like hidden layers (Spearman ρ > 0)
  decay      the linear depth decay costs little accuracy (≤ 1 point) while cutting
             auxiliary FLOPs
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..rules import AUGLOCAL, BP, local_baselines
from .settle import Margin
from .statistics import LEVEL, MIN_SEEDS, compare, t_interval
from .summary import COMPARED, MEMORY

CLOSE_PP = 1.0  # "close to BP": within this many percentage points of final test accuracy
AGREES, DISAGREES, INCONCLUSIVE = "agrees", "does not agree", "inconclusive at this budget"


@dataclass(frozen=True)
class Claim:
    claim: str
    verdict: str  # AGREES | DISAGREES | INCONCLUSIVE
    evidence: str
    margins: tuple[Margin, ...] = ()  # the seed-mean intervals the verdict came from (for settle.py)


def _margin(comparison, threshold: float) -> tuple[Margin, ...]:
    if comparison.ci_low is None:
        return ()
    n = comparison.n_pairs if comparison.n_pairs is not None else min(comparison.n)
    return (Margin(comparison.diff, comparison.ci_low, comparison.ci_high, n, threshold),)


def verdict(low: float | None, high: float | None, threshold: float, above: bool = True) -> str:
    """The claim "the quantity is above `threshold`" (below, with `above` False) judged by
    its interval [low, high]."""
    if low is None or high is None:
        return INCONCLUSIVE
    if above:
        return AGREES if low > threshold else DISAGREES if high < threshold else INCONCLUSIVE
    return AGREES if high < threshold else DISAGREES if low > threshold else INCONCLUSIVE


def _interval_text(low, high, n, unit: str = "") -> str:
    if low is None:
        return f"n = {n}, no interval (fewer than {MIN_SEEDS} seeds)"
    return f"95% CI [{low:+.2f}, {high:+.2f}]{unit}, n = {n}"


def check_claims(report, curves) -> list[Claim]:
    """Every claim this study's cells can speak to; `curves` are its LayerCurves."""
    cells = [c for c in report.cells if c.stats["final_test_acc_pct"] is not None and c.same_as is None]
    by_rule = {c.factors["rule"]: c for c in cells if "rule" in c.factors and len(c.factors) == 1}
    hidden_cka = {c.cell_id: c for c in curves if c.metric == "cka_to_ref"}
    claims = []
    if {BP, AUGLOCAL} <= set(by_rule):
        claims += _rule_claims(by_rule, hidden_cka)
    depth_cells = [c for c in cells if "aux_depth" in c.factors]
    if len({c.factors["aux_depth"] for c in depth_cells}) >= 3:
        claims += _depth_claims(depth_cells, hidden_cka)
    budget = f"; budget: {report.budget}" if report.budget else ""
    return [Claim(c.claim, c.verdict, c.evidence + budget, c.margins) for c in claims]


def _acc(cell) -> float:
    return cell.stats[COMPARED.name].mean


def _versus(a, b, column=COMPARED):
    return compare(a.values[column.name], b.values[column.name], b.cell_id)


def _n(c) -> str:
    return str(c.n_pairs) if c.n_pairs is not None else f"{c.n[0]} vs {c.n[1]}"


def _hidden(curve) -> tuple[float, float | None]:
    """Mean same-layer CKA over the hidden layers, and a conservative half-width of its
    95% interval: the std of a mean over layers is at most the mean of their stds."""
    mean = float(np.mean(curve.mean[:-1]))
    if curve.n < MIN_SEEDS:
        return mean, None
    return mean, float(stats.t.ppf(0.5 + LEVEL / 2, curve.n - 1)) * float(np.mean(curve.std[:-1])) / math.sqrt(curve.n)


def _rule_claims(by_rule: dict, curves: dict) -> list[Claim]:
    aug, bp = by_rule[AUGLOCAL], by_rule[BP]
    gap = _versus(aug, bp)
    claims = [Claim(f"AugLocal's accuracy is close to BP's (within {CLOSE_PP:g} point)",
                    verdict(gap.ci_low, gap.ci_high, -CLOSE_PP),
                    f"final test accuracy {_acc(aug):.2f}% vs {_acc(bp):.2f}%: Δ = {gap.diff:+.2f} points, "
                    + _interval_text(gap.ci_low, gap.ci_high, _n(gap))
                    + (f", p = {gap.p_value:.3g} ({gap.test})" if gap.p_value is not None else ""),
                    _margin(gap, -CLOSE_PP))]
    others = {rule: by_rule[rule] for rule in local_baselines() if rule in by_rule}
    if others:
        versus = {rule: _versus(aug, cell) for rule, cell in others.items()}
        each = [verdict(c.ci_low, c.ci_high, 0.0) for c in versus.values()]
        overall = DISAGREES if DISAGREES in each else AGREES if all(v == AGREES for v in each) else INCONCLUSIVE
        claims.append(Claim("AugLocal is ahead of the other local rules", overall,
                            f"{AUGLOCAL} {_acc(aug):.2f}%; AugLocal minus "
                            + "; ".join(f"{rule} ({_acc(others[rule]):.2f}%): {c.diff:+.2f}, "
                                        + _interval_text(c.ci_low, c.ci_high, _n(c)) for rule, c in versus.items()),
                            tuple(m for c in versus.values() for m in _margin(c, 0.0))))
    similar = {rule: _hidden(curves[cell.cell_id]) for rule, cell in {AUGLOCAL: aug, **others}.items()
               if cell.cell_id in curves}
    if AUGLOCAL in similar and len(similar) > 1:
        rivals = {rule: v for rule, v in similar.items() if rule != AUGLOCAL}
        best = max(rivals, key=lambda r: rivals[r][0])
        (mine, h_mine), (theirs, h_theirs) = similar[AUGLOCAL], rivals[best]
        diff = mine - theirs
        half = math.hypot(h_mine, h_theirs) if h_mine is not None and h_theirs is not None else None
        low, high = (diff - half, diff + half) if half is not None else (None, None)
        claims.append(Claim("AugLocal's hidden layers are more like BP's than other local rules' (linear CKA)",
                            verdict(low, high, 0.0),
                            "mean same-layer CKA to BP over hidden layers: "
                            + ", ".join(f"{rule} {value:.3f}" for rule, (value, _) in similar.items())
                            + f"; AugLocal minus the closest other ({best}): {diff:+.3f}, "
                            + _interval_text(low, high, curves[aug.cell_id].n).replace("95% CI", "conservative 95% CI"),
                            () if low is None else (Margin(diff, low, high, curves[aug.cell_id].n, 0.0),)))
    if aug.stats[MEMORY.name] is not None and bp.stats[MEMORY.name] is not None:
        memory = _versus(aug, bp, MEMORY)
        ratio = aug.stats[MEMORY.name].mean / bp.stats[MEMORY.name].mean
        claims.append(Claim("AugLocal holds less memory than BP", verdict(memory.ci_low, memory.ci_high, 0.0, False),
                            f"peak memory {aug.stats[MEMORY.name].mean:.1f} MiB vs {bp.stats[MEMORY.name].mean:.1f} "
                            f"MiB: ratio {ratio:.2f} (the paper: about 0.6 on GPUs); difference "
                            + _interval_text(memory.ci_low, memory.ci_high, _n(memory), " MiB"),
                            _margin(memory, 0.0)))
    return claims


def _depth_claims(cells: list, curves: dict) -> list[Claim]:
    claims = []
    with_cka = [c for c in cells if c.cell_id in curves]
    if len(with_cka) >= 3:
        depths = [c.factors["aux_depth"] for c in with_cka]
        rho, p = stats.spearmanr(depths, [float(np.mean(curves[c.cell_id].mean[:-1])) for c in with_cka])
        low = high = None
        if len(with_cka) > 3 and np.isfinite(rho):
            # Fisher's z with the Fieller–Hartley–Pearson variance for Spearman's ρ (|ρ| = 1 has no z: clipped)
            half = float(stats.norm.ppf(0.5 + LEVEL / 2)) * math.sqrt(1.06 / (len(with_cka) - 3))
            z = math.atanh(float(np.clip(rho, -1 + 1e-9, 1 - 1e-9)))
            low, high = math.tanh(z - half), math.tanh(z + half)
        claims.append(Claim("Deeper auxiliary nets give more BP-like hidden layers",
                            verdict(low, high, 0.0) if np.isfinite(rho) else INCONCLUSIVE,
                            f"Spearman ρ between d and mean same-layer CKA to the reference over "
                            f"{len(with_cka)} cells: {rho:+.2f} (p = {p:.2g}), "
                            + _interval_text(low, high, f"{len(with_cka)} cells")))
    constant = {c.factors["aux_depth"]: c for c in cells if c.factors.get("decay") == "constant"}
    linear = {c.factors["aux_depth"]: c for c in cells
              if c.factors.get("decay") == "linear" and c.factors.get("decay_coeff") == 0.5}
    # depths where the decay changes the plan (elsewhere the cells are aliases, trained once)
    shared = [d for d in sorted(set(constant) & set(linear))
              if linear[d].stats["aux_mflops"] and constant[d].stats["aux_mflops"]
              and linear[d].stats["aux_mflops"].mean < constant[d].stats["aux_mflops"].mean]
    if shared:
        diffs = [_acc(linear[d]) - _acc(constant[d]) for d in shared]
        flops = [linear[d].stats["aux_mflops"].mean / constant[d].stats["aux_mflops"].mean for d in shared]
        paired = [linear[d].values[COMPARED.name][s] - constant[d].values[COMPARED.name][s] for d in shared
                  for s in linear[d].seeds if s in constant[d].values[COMPARED.name]]
        seeds = min(len(set(linear[d].seeds) & set(constant[d].seeds)) for d in shared)
        low, high = t_interval(np.array(paired)) if seeds >= MIN_SEEDS else (None, None)
        claims.append(Claim(f"The linear depth decay (τ = 0.5) costs little accuracy (within {CLOSE_PP:g} point) "
                            "while cutting auxiliary FLOPs",
                            verdict(low, high, -CLOSE_PP),
                            "linear minus constant where the decay shrinks some auxiliary net, d = "
                            + ", ".join(map(str, shared)) + ": "
                            + ", ".join(f"{d:+.2f}" for d in diffs) + f" points (mean {np.mean(diffs):+.2f}, "
                            + _interval_text(low, high, f"{len(paired)} pairs over {seeds} seeds")
                            + "); auxiliary FLOPs ×" + ", ×".join(f"{f:.2f}" for f in flops),
                            () if low is None else (Margin(float(np.mean(paired)), low, high, len(paired), -CLOSE_PP, len(shared)),)))
    return claims


def render_claims(claims: list[Claim]) -> list[str]:
    if not claims:
        return []
    lines = ["", "The paper's claims, checked on this study's numbers:", "",
             "| claim | verdict | evidence |", "|:---|:---|:---|"]
    lines += [f"| {c.claim} | **{c.verdict}** | {c.evidence} |" for c in claims]
    return lines
