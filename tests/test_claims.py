"""The paper's claims checked on a study's numbers (synthetic runs with known values),
and the results page that collects reports."""

import numpy as np

from ablate.report.claims import check_claims
from ablate.report.layer_curves import LayerCurve
from ablate.report import build_report
from ablate.report.results_page import write_results_section
from ablate.tracking import RunRecord

MIB = 2**20
SEEDS = (0, 1, 2)


def run(cell_id, factors, seed, acc, memory_mib, aux_flops=5e6):
    return RunRecord(run_id=f"{cell_id}-{seed}", cell_id=cell_id, seed=seed, trial_key=f"{cell_id}-s{seed}",
                     factors=factors, end_time=1,
                     metrics={"final_test_acc": acc, "best_test_acc": acc, "peak_memory_bytes_max": memory_mib * MIB,
                              "time_per_epoch_s": 1.0, "aux_flops": aux_flops})


def rules_report(auglocal_acc, dgl_acc):
    cells = {"bp": ("cbp", 0.90, 300), "auglocal": ("caug", auglocal_acc, 120), "dgl": ("cdgl", dgl_acc, 100)}
    runs = [run(cell_id, {"rule": rule}, s, acc + 0.001 * s, mem)
            for rule, (cell_id, acc, mem) in cells.items() for s in SEEDS]
    return build_report(runs, study="rules", cells=[(c, {"rule": r}) for r, (c, _, _) in cells.items()],
                        seeds=SEEDS, reference={"rule": "bp"})


def curve(cell_id, values):
    return LayerCurve(cell_id, cell_id, "cka_to_ref", np.array(values), np.zeros(len(values)), 3)


def test_rule_claims_agree_when_auglocal_is_close_to_bp_and_ahead_of_dgl():
    report = rules_report(auglocal_acc=0.895, dgl_acc=0.85)
    claims = {c.claim: c for c in check_claims(report, [curve("caug", [0.9, 0.8, 0.3]), curve("cdgl", [0.6, 0.4, 0.3])])}
    assert claims["AugLocal's accuracy is close to BP's (within 1 point)"].verdict == "agrees"
    assert "Δ = -0.50 points" in claims["AugLocal's accuracy is close to BP's (within 1 point)"].evidence
    assert claims["AugLocal is ahead of the other local rules"].verdict == "agrees"
    similarity = claims["AugLocal's hidden layers are more like BP's than other local rules' (linear CKA)"]
    assert similarity.verdict == "agrees" and "auglocal 0.850, dgl 0.500" in similarity.evidence
    assert claims["AugLocal holds less memory than BP"].evidence.startswith("peak memory 120.0 MiB vs 300.0 MiB")


def test_rule_claims_say_when_the_numbers_disagree():
    report = rules_report(auglocal_acc=0.86, dgl_acc=0.87)
    claims = {c.claim: c.verdict for c in check_claims(report, [])}
    assert claims["AugLocal's accuracy is close to BP's (within 1 point)"] == "does not agree"
    assert claims["AugLocal is ahead of the other local rules"] == "does not agree"
    assert not any("CKA" in claim for claim in claims)  # no curves, no similarity claim


def test_depth_claims_use_the_depth_trend_and_the_decay_cost():
    cells, runs, curves = [], [], []
    for d in (1, 2, 3):
        for decay, acc, flops in (("constant", 0.80 + 0.01 * d, 10e6 * d), ("linear", 0.80 + 0.01 * d - 0.002, 6e6 * d if d > 1 else 10e6)):
            # at d = 1 the decay has nothing to shrink: the same networks, left out of the decay claim
            factors = {"aux_depth": d, "decay": decay} | ({"decay_coeff": 0.5} if decay == "linear" else {})
            cell_id = f"c{d}{decay[0]}"
            cells.append((cell_id, factors))
            runs += [run(cell_id, factors, s, acc, 50, flops) for s in SEEDS]
            curves.append(curve(cell_id, [0.5 + 0.1 * d, 0.4 + 0.1 * d, 0.2]))
    report = build_report(runs, study="depth", cells=cells, seeds=SEEDS)
    claims = {c.claim: c for c in check_claims(report, curves)}
    depth = claims["Deeper auxiliary nets give more BP-like hidden layers"]
    assert depth.verdict == "agrees" and "over 6 cells: +1.00" in depth.evidence
    decay = claims["The linear depth decay (τ = 0.5) costs little accuracy (within 1 point) while cutting "
                   "auxiliary FLOPs"]
    assert decay.verdict == "agrees" and "net, d = 2, 3: -0.20, -0.20 points" in decay.evidence and "×0.60" in decay.evidence


def test_a_results_page_keeps_one_section_per_study_with_links_relative_to_it(tmp_path):
    page = tmp_path / "RESULTS.md"
    report = rules_report(0.895, 0.85)
    report.claims = check_claims(report, [])
    out = tmp_path / "docs" / "results" / "rules"
    report.figures = [("probes", out / "probe_accuracy_per_layer.png")]
    write_results_section(report, out, page, {"epochs": 5})
    write_results_section(report, out, page, {"epochs": 5})
    text = page.read_text()
    assert text.startswith("# Results") and text.count("<!-- study: rules -->") == 1
    assert "![probes](docs/results/rules/probe_accuracy_per_layer.png)" in text
    assert "Run with these overrides of the study file: `epochs=5`." in text
    assert "| AugLocal's accuracy is close to BP's (within 1 point) | **agrees** |" in text


def test_a_results_page_header_is_written_anew_and_other_studies_sections_are_kept(tmp_path):
    page = tmp_path / "RESULTS.md"
    page.write_text("# Results\n\nLast written 1999-01-01 with ablate 0.0.1.\n\n"
                    "<!-- study: other -->\n## Study `other`\n\nkept\n<!-- end: other -->\n")
    report = rules_report(0.895, 0.85)
    write_results_section(report, tmp_path / "out", page, {})
    text = page.read_text()
    assert "1999-01-01" not in text and text.count("Last written") == 1
    assert "<!-- study: other -->\n## Study `other`\n\nkept\n<!-- end: other -->" in text
    assert text.index("<!-- study: other -->") < text.index("<!-- study: rules -->")
