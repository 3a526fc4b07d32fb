"""What settles an inconclusive claim: the seeds at the same spread, by hand, and the
GPU command at the study file's own budget."""

import math

from scipy import stats

from ablate.report.settle import MAX_SEEDS, Margin, gpu_command, seeds_to_settle, settle_lines


def half_width(s: float, n: int) -> float:
    return float(stats.t.ppf(0.975, n - 1)) * s / math.sqrt(n)


def margin(estimate: float, s: float, n: int, threshold: float, per_seed: int = 1) -> Margin:
    h = half_width(s, n)
    return Margin(estimate, estimate - h, estimate + h, n, threshold, per_seed)


def test_the_fewest_seeds_whose_interval_leaves_out_the_threshold():
    # est −4, s = 2, θ = −1: the gap is 3. Half-widths t(m−1)·2/√m: m=3 → 4.97, m=4 → 3.18,
    # m=5 → 2.48 (< 3): five seeds.
    assert half_width(2, 4) > 3 > half_width(2, 5)
    assert seeds_to_settle(margin(-4.0, 2.0, 3, -1.0)) == 5


def test_a_difference_on_its_threshold_or_too_far_off_is_not_settled_by_seeds():
    assert seeds_to_settle(margin(-1.0, 2.0, 3, -1.0)) is None
    # a gap of 0.01 at s = 2 needs about (1.96·2/0.01)² ≈ 150,000 seeds
    assert seeds_to_settle(margin(-1.01, 2.0, 3, -1.0)) is None
    assert MAX_SEEDS < 150_000


def test_values_pooled_over_several_cells_per_seed_count_in_seeds():
    # two values a seed (two depths): more seeds add two values each
    pooled = margin(-4.0, 2.0, 4, -1.0, per_seed=2)  # 2 seeds × 2 values: m = 6 values is the first to settle
    assert half_width(2, 4) > 3 > half_width(2, 6)
    assert seeds_to_settle(pooled) == 3


def test_each_inconclusive_claim_gets_the_seeds_and_the_command_for_its_study_file():
    claim = type("Claim", (), {"claim": "AugLocal is close to BP", "margins": (margin(-4.0, 2.0, 3, -1.0),)})()
    [line] = settle_lines([claim], "studies/rules.yaml", "4 epochs × 9,000 training images", 3)
    assert "about 5 seeds at this budget (4 epochs × 9,000 training images)" in line
    assert gpu_command("studies/rules.yaml", 5) in line
    assert "--set 'seeds=[0, 1, 2, 3, 4]'" in gpu_command("studies/rules.yaml", 5)


def test_the_command_keeps_at_least_the_study_files_own_seeds():
    on_threshold = type("Claim", (), {"claim": "c", "margins": (margin(-1.0, 2.0, 3, -1.0),)})()
    [line] = settle_lines([on_threshold], "studies/rules.yaml", "b", 3)
    assert "would not settle it" in line and "seeds=[0, 1, 2]" in line


def test_a_margin_that_already_excludes_its_threshold_adds_no_line():
    clear = type("Claim", (), {"claim": "c", "margins": (margin(-9.0, 1.0, 3, -1.0),)})()
    assert settle_lines([clear], "s.yaml", "b", 3) == []
