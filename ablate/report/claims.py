"""The paper's claims, checked against a study's own numbers.

Each check applies when the study has the cells it needs (e.g. a `rule` factor with bp
and auglocal) and says "agrees", "does not agree" or "cannot tell" (too few seeds or
cells), with the figures it used. The thresholds are stated in every sentence.

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

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..rules import AUGLOCAL, BP, local_baselines

CLOSE_PP = 1.0  # "close to BP": within this many percentage points of final test accuracy


@dataclass(frozen=True)
class Claim:
    claim: str
    verdict: str  # agrees | does not agree | cannot tell
    evidence: str


def check_claims(report, curves) -> list[Claim]:
    """Every claim this study's cells can speak to; `curves` are its LayerCurves."""
    cells = [c for c in report.cells if c.stats["final_test_acc_pct"] is not None]
    by_rule = {c.factors["rule"]: c for c in cells if "rule" in c.factors and len(c.factors) == 1}
    hidden_cka = {c.cell_id: float(np.mean(c.mean[:-1])) for c in curves if c.metric == "cka_to_ref"}
    claims = []
    if {BP, AUGLOCAL} <= set(by_rule):
        claims += _rule_claims(by_rule, hidden_cka)
    depth_cells = [c for c in cells if "aux_depth" in c.factors]
    if len({c.factors["aux_depth"] for c in depth_cells}) >= 3:
        claims += _depth_claims(depth_cells, hidden_cka)
    return claims


def _acc(cell) -> float:
    return cell.stats["final_test_acc_pct"].mean


def _rule_claims(by_rule: dict, hidden_cka: dict) -> list[Claim]:
    aug, bp = by_rule[AUGLOCAL], by_rule[BP]
    diff = _acc(aug) - _acc(bp)
    p = aug.comparison.p_value if aug.comparison is not None else None
    claims = [Claim(f"AugLocal's accuracy is close to BP's (within {CLOSE_PP:g} point)",
                    "agrees" if diff >= -CLOSE_PP else "does not agree",
                    f"final test accuracy {_acc(aug):.2f}% vs {_acc(bp):.2f}%: Δ = {diff:+.2f} points"
                    + (f", p = {p:.3g} ({aug.comparison.test})" if p is not None else ""))]
    others = {rule: by_rule[rule] for rule in local_baselines() if rule in by_rule}
    if others:
        behind = [rule for rule, cell in others.items() if _acc(cell) >= _acc(aug)]
        claims.append(Claim("AugLocal is ahead of the other local rules",
                            "agrees" if not behind else "does not agree",
                            ", ".join(f"{rule} {_acc(cell):.2f}%" for rule, cell in others.items())
                            + f" vs {AUGLOCAL} {_acc(aug):.2f}%"
                            + (f"; not behind AugLocal: {', '.join(behind)}" if behind else "")))
    similar = {rule: hidden_cka[cell.cell_id] for rule, cell in {AUGLOCAL: aug, **others}.items()
               if cell.cell_id in hidden_cka}
    if AUGLOCAL in similar and len(similar) > 1:
        best = max(similar, key=similar.get)
        claims.append(Claim("AugLocal's hidden layers are more like BP's than other local rules' (linear CKA)",
                            "agrees" if best == AUGLOCAL else "does not agree",
                            "mean same-layer CKA to BP over hidden layers: "
                            + ", ".join(f"{rule} {value:.3f}" for rule, value in similar.items())))
    memory = aug.stats["peak_memory_mib"], bp.stats["peak_memory_mib"]
    if None not in memory:
        ratio = memory[0].mean / memory[1].mean
        claims.append(Claim("AugLocal holds less memory than BP", "agrees" if ratio < 1 else "does not agree",
                            f"peak memory {memory[0].mean:.1f} MiB vs {memory[1].mean:.1f} MiB: "
                            f"ratio {ratio:.2f} (the paper: about 0.6 on GPUs)"))
    return claims


def _depth_claims(cells: list, hidden_cka: dict) -> list[Claim]:
    claims = []
    with_cka = [c for c in cells if c.cell_id in hidden_cka]
    if len(with_cka) >= 3:
        depths = [c.factors["aux_depth"] for c in with_cka]
        rho, p = stats.spearmanr(depths, [hidden_cka[c.cell_id] for c in with_cka])
        claims.append(Claim("Deeper auxiliary nets give more BP-like hidden layers",
                            "agrees" if rho > 0 else "does not agree" if np.isfinite(rho) else "cannot tell",
                            f"Spearman ρ between d and mean same-layer CKA to the reference over "
                            f"{len(with_cka)} cells: {rho:+.2f} (p = {p:.2g})"))
    constant = {c.factors["aux_depth"]: c for c in cells if c.factors.get("decay") == "constant"}
    linear = {c.factors["aux_depth"]: c for c in cells
              if c.factors.get("decay") == "linear" and c.factors.get("decay_coeff") == 0.5}
    # depths where the decay changes the plan: at d = 1, and where rounding keeps every
    # depth (e.g. d = 2 at τ = 0.5), the two cells train the same networks
    shared = [d for d in sorted(set(constant) & set(linear))
              if linear[d].stats["aux_mflops"] and constant[d].stats["aux_mflops"]
              and linear[d].stats["aux_mflops"].mean < constant[d].stats["aux_mflops"].mean]
    if shared:
        diffs = [_acc(linear[d]) - _acc(constant[d]) for d in shared]
        flops = [linear[d].stats["aux_mflops"].mean / constant[d].stats["aux_mflops"].mean for d in shared]
        agrees = np.mean(diffs) >= -CLOSE_PP
        claims.append(Claim(f"The linear depth decay (τ = 0.5) costs little accuracy (within {CLOSE_PP:g} point) "
                            "while cutting auxiliary FLOPs",
                            "agrees" if agrees else "does not agree",
                            "linear minus constant where the decay shrinks some auxiliary net, d = "
                            + ", ".join(map(str, shared)) + ": "
                            + ", ".join(f"{d:+.2f}" for d in diffs) + " points (mean "
                            + f"{np.mean(diffs):+.2f}); auxiliary FLOPs ×"
                            + ", ×".join(f"{f:.2f}" for f in flops)
                            + (" (one seed per cell: read the sign, not the size)" if _seeds(linear, shared) < 2 else "")))
    return claims


def _seeds(cells: dict, depths: list) -> int:
    return min(len(cells[d].seeds) for d in depths)


def render_claims(claims: list[Claim]) -> list[str]:
    if not claims:
        return []
    lines = ["", "The paper's claims, checked on this study's numbers:", "",
             "| claim | verdict | evidence |", "|:---|:---|:---|"]
    lines += [f"| {c.claim} | **{c.verdict}** | {c.evidence} |" for c in claims]
    return lines
