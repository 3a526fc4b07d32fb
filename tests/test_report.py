"""The study report from synthetic runs with known numbers: statistics over seeds,
missing seeds, the reference comparison and its test, table formats, plots."""

import csv
import io
import math

import pytest
from scipy import stats

from ablate.report import render, ReportError, build_report, summarize
from ablate.tracking import RunRecord

MIB = 2**20
BP = ("c0bp00000000", {"rule": "bp"})
D1 = ("c1d1", {"rule": "auglocal", "aux_depth": 1})
D2 = ("c2d2", {"rule": "auglocal", "aux_depth": 2})
D3 = ("c3d3", {"rule": "auglocal", "aux_depth": 3})
SEEDS = (0, 1, 2)


def run(cell, seed, acc, memory_mib=100.0, end_time=1000, **metrics):
    cell_id, factors = cell
    return RunRecord(
        run_id=f"{cell_id}-{seed}-{end_time}", cell_id=cell_id, seed=seed, trial_key=f"{cell_id}-s{seed}",
        factors=factors, end_time=end_time,
        metrics={"final_test_acc": acc, "best_test_acc": acc - 0.01, "peak_memory_bytes_max": memory_mib * MIB,
                 "time_per_epoch_s": 2.0 + seed, "aux_flops": 5e6, **metrics})


BP_ACC = [0.90, 0.92, 0.94]
D2_ACC = [0.89, 0.90, 0.95]
RUNS = (
    [run(BP, s, a, memory_mib=300) for s, a in zip(SEEDS, BP_ACC)]
    + [run(D1, 0, 0.80, 60), run(D1, 1, 0.84, 62)]  # seed 2 never finished
    + [run(D2, s, a, 80) for s, a in zip(SEEDS, D2_ACC)]
)


def cell(report, cell_id):
    return next(c for c in report.cells if c.cell_id == cell_id)


def full_report(**kwargs):
    return build_report(RUNS, study="quick", cells=[BP, D1, D2, D3], seeds=SEEDS, reference={"rule": "bp"}, **kwargs)


# ------------------------------------------------------------------------------ statistics
def test_mean_std_and_confidence_interval_match_a_hand_computation():
    stat = cell(full_report(), BP[0]).stats["final_test_acc_pct"]
    # 90, 92, 94: mean 92, sample std sqrt((4 + 0 + 4) / 2) = 2, t(0.975, df=2) = 4.3027;
    # the interval is the t-interval of the logits, mapped back into [0, 100]
    logits = [math.log(p / (1 - p)) for p in (0.90, 0.92, 0.94)]
    centre = sum(logits) / 3
    spread = math.sqrt(sum((x - centre) ** 2 for x in logits) / 2)
    half = 4.302652729911275 * spread / math.sqrt(3)
    expit = lambda x: 100 / (1 + math.exp(-x))  # noqa: E731
    assert stat.n == 3
    assert stat.mean == pytest.approx(92.0)
    assert stat.std == pytest.approx(2.0)
    assert (stat.ci_low, stat.ci_high) == (pytest.approx(expit(centre - half)), pytest.approx(expit(centre + half)))


def test_every_reported_quantity_is_in_its_unit():
    stats_ = cell(full_report(), BP[0]).stats
    assert stats_["best_val_test_acc_pct"].mean == pytest.approx(91.0)
    assert stats_["peak_memory_mib"].mean == pytest.approx(300.0)
    assert stats_["time_per_epoch_s"].mean == pytest.approx(3.0)
    assert stats_["aux_mflops"].mean == pytest.approx(5.0) and stats_["aux_mflops"].std == 0


def test_one_value_has_a_mean_but_no_spread():
    stat = summarize([0.5])
    assert (stat.n, stat.mean, stat.std, stat.ci_low) == (1, 0.5, None, None)
    assert summarize([]) is None


def test_a_cell_missing_seeds_says_which():
    report = full_report()
    assert cell(report, D1[0]).n_text == "2 of 3, missing seeds: 2"
    assert cell(report, BP[0]).n_text == "3"
    assert "| rule=auglocal, aux_depth=1 | 2 of 3, missing seeds: 2 |" in render(report, "markdown")


def test_a_cell_without_finished_runs_is_listed_as_such():
    report = full_report()
    assert cell(report, D3[0]).n_text == "no finished runs"
    assert "| rule=auglocal, aux_depth=3 | no finished runs | — |" in render(report, "markdown")


def test_runs_of_seeds_or_cells_outside_the_study_are_left_out_and_counted():
    extra = [run(BP, 7, 0.10), run(("gone", {"rule": "dgl"}), 0, 0.5)]
    report = build_report(RUNS + extra, study="quick", cells=[BP, D1, D2], seeds=SEEDS)
    assert cell(report, BP[0]).stats["final_test_acc_pct"].mean == pytest.approx(92.0)
    assert report.notes == ["2 finished run(s) of cells or seeds no longer in the study are left out"]


def test_a_trial_finished_twice_counts_once_with_its_latest_run():
    again = run(BP, 0, 0.96, end_time=2000)
    report = build_report(RUNS + [again], study="quick", cells=[BP], seeds=SEEDS)
    assert cell(report, BP[0]).values["final_test_acc_pct"][0] == pytest.approx(96.0)
    assert "repeat a trial" in report.notes[0]


# ------------------------------------------------------------------------------ comparison
def test_cells_sharing_seeds_with_the_reference_get_a_paired_t_test():
    comparison = cell(full_report(), D2[0]).comparison
    expected = stats.ttest_rel([89, 90, 95], [90, 92, 94])
    assert comparison.reference == BP[0]
    assert comparison.test == "paired t-test" and comparison.n_pairs == 3
    assert comparison.p_value == pytest.approx(expected.pvalue)
    assert comparison.diff == pytest.approx((-1 - 2 + 1) / 3)


def test_the_paired_test_uses_only_the_seeds_both_cells_have():
    comparison = cell(full_report(), D1[0]).comparison
    assert comparison.test == "paired t-test" and comparison.n_pairs == 2
    assert comparison.p_value == pytest.approx(stats.ttest_rel([80, 84], [90, 92]).pvalue)
    assert comparison.diff == pytest.approx(-9.0)


def test_cells_without_common_seeds_get_welchs_t_test():
    runs = [run(BP, s, a) for s, a in zip((0, 1, 2), BP_ACC)] + [run(D2, s, a) for s, a in zip((3, 4, 5), D2_ACC)]
    comparison = cell(build_report(runs, study="s", reference={"rule": "bp"}), D2[0]).comparison
    expected = stats.ttest_ind([89, 90, 95], [90, 92, 94], equal_var=False)
    assert comparison.test == "Welch's t-test" and comparison.n_pairs is None
    assert comparison.p_value == pytest.approx(expected.pvalue)
    assert comparison.diff == pytest.approx(-2 / 3)


def test_one_seed_is_too_few_for_a_test():
    runs = [run(BP, s, a) for s, a in zip(SEEDS, BP_ACC)] + [run(D2, 5, 0.91)]
    report = build_report(runs, study="s", reference={"rule": "bp"})
    comparison = cell(report, D2[0]).comparison
    assert comparison.test == "too few seeds" and comparison.p_value is None
    assert "too few seeds" in render(report, "markdown")


def test_the_reference_cell_is_marked_and_an_empty_cell_is_not_tested():
    report = full_report()
    assert cell(report, BP[0]).comparison.test == "reference"
    assert cell(report, D3[0]).comparison is None


def test_each_cell_is_compared_with_the_reference_sharing_its_other_factors():
    cells = [(f"{decay}{d}", {"decay": decay, "aux_depth": d}) for decay in ("constant", "linear") for d in (1, 2)]
    runs = [run(c, s, 0.8 + 0.01 * s) for c in cells for s in SEEDS]
    report = build_report(runs, study="s", cells=cells, seeds=SEEDS, reference={"decay": "constant"})
    assert cell(report, "linear1").comparison.reference == "constant1"
    assert cell(report, "linear2").comparison.reference == "constant2"


def test_a_search_study_without_runs_reports_that_and_draws_nothing(tmp_path):
    report = build_report([], study="search", reference={"rule": "bp"}, out_dir=tmp_path)
    assert report.cells == [] and report.notes == ["no finished runs yet"]
    assert "- no finished runs yet" in render(report, "markdown")
    assert not [p for p in report.files if p.suffix == ".png"]


def test_a_reference_matching_no_cell_is_a_user_error():
    with pytest.raises(ReportError, match=r"reference rule=infopro matches no cell of study 'quick'"):
        build_report(RUNS, study="quick", cells=[BP, D1, D2], seeds=SEEDS, reference={"rule": "infopro"})


# ------------------------------------------------------------------------------ formats
def test_markdown_names_the_study_seeds_and_reference():
    text = render(full_report(), "markdown")
    assert text.startswith("**Study quick · 4 cells · seeds 0, 1, 2 (3 per cell) · reference: rule=bp**")
    assert "| rule=bp | 3 | 92.00 ± 2.00 [85.49, 95.91] |" in text  # logit interval: asymmetric near 100
    assert "| reference |" in text
    assert "p=" in text and "paired t" in text


def test_csv_has_one_row_per_cell_with_every_statistic():
    rows = list(csv.DictReader(io.StringIO(render(full_report(), "csv"))))
    assert [r["cell_id"] for r in rows] == [BP[0], D1[0], D2[0], D3[0]]
    bp = rows[0]
    assert float(bp["final_test_acc_pct_mean"]) == pytest.approx(92.0)
    assert float(bp["final_test_acc_pct_std"]) == pytest.approx(2.0)
    assert float(bp["peak_memory_mib_mean"]) == pytest.approx(300.0)
    assert bp["rule"] == "bp" and bp["aux_depth"] == ""
    assert rows[1]["missing_seeds"] == "2" and rows[1]["test"] == "paired t-test"
    assert rows[3]["n"] == "0" and rows[3]["final_test_acc_pct_mean"] == ""


def test_latex_is_a_booktabs_tabular_with_escaped_labels():
    text = render(full_report(), "latex")
    assert r"\begin{tabular}{l" in text and r"\end{tabular}" in text
    assert r"\toprule" in text and r"\midrule" in text and r"\bottomrule" in text
    assert r"rule=auglocal, aux\_depth=2" in text
    assert r"92.00 $\pm$ 2.00 &" in text
    assert "final test acc (\\%)" in text


def test_an_unknown_format_is_a_user_error():
    with pytest.raises(ReportError, match="choose one of text, markdown, csv, latex"):
        render(full_report(), "pdf")


# ------------------------------------------------------------------------------ files
def is_png(path):
    return path.stat().st_size > 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tables_and_plots_are_written_to_the_output_directory(tmp_path):
    report = full_report(out_dir=tmp_path)
    names = sorted(p.name for p in report.files)
    assert names == ["accuracy_vs_aux_depth.png", "accuracy_vs_peak_memory.png", "effects.csv",
                     "main_effects.png", "report.csv", "report.html", "report.md", "report.tex"]
    assert all(p.parent == tmp_path for p in report.files)
    assert all(is_png(p) for p in report.files if p.suffix == ".png")
    assert (tmp_path / "report.md").read_text() == render(report, "markdown")


def test_without_an_aux_depth_factor_only_the_memory_plot_is_drawn(tmp_path):
    runs = [run(("bp", {"rule": "bp"}), s, 0.9) for s in SEEDS] + [run(("dgl", {"rule": "dgl"}), s, 0.8) for s in SEEDS]
    report = build_report(runs, study="rules", reference={"rule": "bp"}, out_dir=tmp_path)
    assert [p.name for p in report.files if p.suffix == ".png"] == ["accuracy_vs_peak_memory.png", "main_effects.png"]


def test_without_out_dir_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert full_report().files == []
    assert list(tmp_path.iterdir()) == []
