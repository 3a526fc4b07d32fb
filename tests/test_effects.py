"""Effects, intervals and three-valued claims against hand-computed values: a 2 × 3
factorial with known additive effects, and cells whose identical training is shared."""

import numpy as np
import pytest

from ablate.report import build_report, summarize
from ablate.report.claims import AGREES, DISAGREES, INCONCLUSIVE, verdict
from ablate.report.effects_budget import budget_gaps, settled_at
from ablate.report.statistics import compare
from ablate.tracking import RunRecord

SEEDS = (0, 1, 2)
# y (%) = 70 + A effect + B effect + seed block + a known residual: A: 1 -> 0, 2 -> +3;
# B: x -> 0, y -> -2, z -> +1; seed s -> +0.5 s; residuals sum to zero in every margin
A = {1: 0.0, 2: 3.0}
B = {"x": 0.0, "y": -2.0, "z": 1.0}
NOISE = {(1, "x"): 0.2, (1, "y"): -0.1, (1, "z"): -0.1, (2, "x"): -0.2, (2, "y"): 0.1, (2, "z"): 0.1}


def run(cell_id, factors, seed, acc_pct):
    return RunRecord(run_id=f"{cell_id}-{seed}", cell_id=cell_id, seed=seed, trial_key=f"{cell_id}-s{seed}",
                     factors=factors, end_time=1,
                     metrics={"final_test_acc": acc_pct / 100, "best_test_acc": acc_pct / 100,
                              "peak_memory_bytes_max": 2**20 * (100 + 10 * factors["a"]), "time_per_epoch_s": 1.0,
                              "aux_flops": 1e6 * factors["a"]})


def factorial(noise=NOISE):
    cells, runs = [], []
    for a in A:
        for b in B:
            cell_id, factors = f"c{a}{b}", {"a": a, "b": b}
            cells.append((cell_id, factors))
            runs += [run(cell_id, factors, s, 70 + A[a] + B[b] + 0.5 * s + noise[(a, b)] * (s - 1)) for s in SEEDS]
    return build_report(runs, study="factorial", cells=cells, seeds=SEEDS)


def test_main_effects_equal_the_known_effects_and_the_marginal_means():
    effects = {(e.quantity, e.factor, e.level): e for e in factorial().effects.effects}
    acc = "final_test_acc_pct"
    # balanced design: the OLS effect is the difference of marginal means, here exactly the planted effects
    assert effects[(acc, "a", 2)].estimate == pytest.approx(3.0)
    assert effects[(acc, "b", "y")].estimate == pytest.approx(-2.0)
    assert effects[(acc, "b", "z")].estimate == pytest.approx(1.0)
    for e in effects.values():
        if e.quantity == acc:
            assert e.estimate == pytest.approx(e.marginal)
            assert e.ci_low < e.estimate < e.ci_high and e.p_holm >= e.p_value
    assert effects[("peak_memory_mib", "a", 2)].estimate == pytest.approx(10.0)


def test_the_interval_of_an_effect_is_the_hand_computed_one():
    # residuals of the additive model y ~ a + b + seed are the planted noise × (s - 1):
    # SSE = 2 × sum(noise²) = 2 × 0.12 = 0.24 on 18 - 1 - 1 - 2 - 2 = 12 degrees of freedom
    effect = next(e for e in factorial().effects.effects if e.factor == "a" and e.quantity == "final_test_acc_pct")
    from scipy import stats
    se = np.sqrt(0.24 / 12) * np.sqrt(1 / 9 + 1 / 9)
    half = stats.t.ppf(0.975, 12) * se
    assert (effect.ci_low, effect.ci_high) == pytest.approx((3.0 - half, 3.0 + half))


def test_the_interaction_is_tested_where_the_factors_are_crossed():
    inter = [i for i in factorial().effects.interactions if i.quantity == "final_test_acc_pct"]
    assert len(inter) == 1 and inter[0].factors == ("a", "b") and inter[0].cells == 6 and inter[0].p_value > 0.05
    interacting = NOISE
    cells, runs = [], []
    for a in A:
        for b in B:
            factors = {"a": a, "b": b}
            cells.append((f"c{a}{b}", factors))
            bump = 4.0 if (a, b) == (2, "z") else 0.0
            runs += [run(f"c{a}{b}", factors, s, 70 + A[a] + B[b] + bump + interacting[(a, b)] * (s - 1))
                     for s in SEEDS]
    report = build_report(runs, study="i", cells=cells, seeds=SEEDS)
    strong = next(i for i in report.effects.interactions if i.quantity == "final_test_acc_pct")
    assert strong.p_holm < 0.01


def test_accuracy_intervals_stay_within_0_and_100_and_need_three_seeds():
    near_top = summarize([99.9, 99.99, 97.0], percent=True)
    assert 0 <= near_top.ci_low < near_top.mean and near_top.ci_high <= 100
    plain = summarize([99.9, 99.99, 97.0])
    assert plain.ci_high > 100  # what the plain t-interval would have printed
    two = summarize([77.57, 112.96 - 35], percent=True)
    assert two.ci_low is None and two.no_interval == "no interval: n = 2 < 3 seeds" and two.std is not None


def test_a_comparison_reports_its_interval_detectable_difference_and_noise():
    c = compare({0: 80.0, 1: 81.0, 2: 82.5}, {0: 79.0, 1: 80.5, 2: 81.0}, "ref")
    diffs = np.array([1.0, 0.5, 1.5])
    assert c.diff == pytest.approx(1.0) and c.ci_low < 1.0 < c.ci_high
    from statsmodels.stats.power import TTestPower
    assert c.mdd == pytest.approx(TTestPower().solve_power(nobs=3, alpha=0.05, power=0.8) * diffs.std(ddof=1))
    assert c.noisy  # seeds spread by 1.25 and 1.04 points, more than the 1.0 compared
    short = compare({0: 80.0, 1: 81.0}, {0: 79.0, 1: 80.5}, "ref")
    assert short.ci_low is None and short.mdd is None and short.p_value is not None


def test_verdicts_are_three_valued():
    assert verdict(-0.5, 0.4, -1.0) == AGREES
    assert verdict(-3.0, -1.5, -1.0) == DISAGREES
    assert verdict(-2.0, 0.5, -1.0) == INCONCLUSIVE
    assert verdict(None, None, -1.0) == INCONCLUSIVE


def test_alias_cells_share_their_trials_and_count_once():
    cells = [("c1c", {"d": 1, "decay": "constant"}), ("c1l", {"d": 1, "decay": "linear"}),
             ("c2c", {"d": 2, "decay": "constant"}), ("c2l", {"d": 2, "decay": "linear"})]
    runs = [RunRecord(run_id=f"{c}{s}", cell_id=c, seed=s, trial_key=f"{c}-s{s}", factors=f, end_time=1,
                      metrics={"final_test_acc": 0.8 + 0.01 * s + 0.02 * (c == "c2c")})
            for c, f in cells if c != "c1l" for s in SEEDS]
    report = build_report(runs, study="a", cells=cells, seeds=SEEDS, reference={"d": 1, "decay": "constant"},
                          aliases={"c1l": "c1c"})
    alias = report.cells[1]
    assert alias.seeds == [0, 1, 2] and "same network as d=1, decay=constant" in alias.n_text
    assert alias.comparison.test == "same network as the reference"
    effect = next(e for e in report.effects.effects if e.factor == "decay" and e.quantity == "final_test_acc_pct")
    assert effect.n == 9  # three trained cells × three seeds; the alias's shared trials are not counted again


def test_the_budget_gap_is_paired_per_budget_and_settles_when_it_stops_moving():
    cells, runs = [], []
    gaps = {2: -6.0, 4: -2.0, 8: -1.0, 16: -0.9}
    for epochs, gap in gaps.items():
        for rule in ("bp", "auglocal"):
            factors = {"rule": rule, "epochs": epochs, "train_subset": 1000}
            cell_id = f"{rule}{epochs}"
            cells.append((cell_id, factors))
            runs += [RunRecord(run_id=f"{cell_id}{s}", cell_id=cell_id, seed=s, trial_key=f"{cell_id}-s{s}",
                               factors=factors, end_time=1,
                               metrics={"final_test_acc": (80 + s + (gap + 0.2 * (s - 1) if rule == "auglocal" else 0))
                                        / 100}) for s in SEEDS]
    report = build_report(runs, study="budget", cells=cells, seeds=SEEDS)
    found = budget_gaps(report.cells)
    assert [g.comparison.diff for g in found] == pytest.approx(list(gaps.values()))
    assert [g.examples for g in found] == [2000, 4000, 8000, 16000]
    assert settled_at(found).budget["epochs"] == 8


def test_depth_decay_trains_21_networks_per_seed_and_lists_its_5_aliases():
    from ablate.spec import load_study
    spec = load_study("studies/depth_decay.yaml")
    assert len(spec.cells()) == 21 and len(spec.layout) == 26 and len(spec.trials) == 21 * len(spec.seeds)
    factors = {entry.cell_id: entry.factors for entry in spec.layout}
    pairs = {(tuple(factors[a].values()), tuple(factors[b].values())) for a, b in spec.aliases().items()}
    assert ((2, "linear", 0.5), (2, "constant")) in pairs
    assert sum(1 for alias, trained in pairs if trained == (1, "constant")) == 4 and len(pairs) == 5


def test_the_budget_study_pairs_bp_and_auglocal_at_five_budgets_with_three_seeds():
    from ablate.spec import load_study
    spec = load_study("studies/budget.yaml")
    assert len(spec.trials) == 30 and spec.seeds == (0, 1, 2)
    budgets = {(f["epochs"], f["train_subset"]) for _, f in spec.cells()}
    assert sorted(e * n for e, n in budgets) == [8000, 36000, 72000, 216000, 550000]
    assert {f["rule"] for _, f in spec.cells()} == {"bp", "auglocal"}


ALIAS_STUDY = """\
name: aliased
settings: {dataset: digits, model: resnet20, width: 0.25, epochs: 1, rule: auglocal, device: cpu}
grid:
  aux_depth: [1, 2]
  decay: [constant, linear]
seeds: [0]
"""


def test_dry_run_and_status_show_the_aliases_without_writing(capsys, tmp_path):
    from ablate.cli import main
    study = tmp_path / "aliased.yaml"
    study.write_text(ALIAS_STUDY)
    outputs = []
    for command in (["run", str(study), "--dry-run"], ["status", str(study)]):
        assert main(command) == 0
        outputs.append(capsys.readouterr().out)
    dry, status = outputs
    # τ = 0.5 (the default) keeps depth 2 everywhere after rounding: linear = constant at both depths
    assert "2 cells × 1 seed = 2 trials" in dry and "(4 listed; 2 aliases of them" in dry
    assert "same network as aux_depth=1 decay=constant" in dry
    assert "aux_depth=1, decay=linear: same network as aux_depth=1, decay=constant, shares its trials" in status
    assert not (tmp_path / "runs").exists()


SEARCH_STUDY = """\
name: searched
settings: {dataset: digits, model: resnet20, width: 0.25, epochs: 1, rule: auglocal, device: cpu}
search:
  sampler: random
  objectives: [best_val_acc]
  space:
    lr: {low: 0.01, high: 1.0, log: true}
    aux_depth: {low: 1, high: 3}
  n_trials: 30
"""


def test_a_search_reports_fanova_importances_that_find_the_parameter_that_matters(tmp_path):
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution

    from ablate.spec import load_study
    from ablate.study import param_importances, resolve_storage
    study_file = tmp_path / "searched.yaml"
    study_file.write_text(SEARCH_STUDY)
    spec = load_study(study_file)
    assert param_importances(spec) == {}  # never run: nothing to read, and nothing created
    assert not (tmp_path / "runs").exists()
    spec.directory.mkdir(parents=True)
    study = optuna.create_study(study_name=spec.name, storage=resolve_storage(spec), direction="maximize")
    rng = np.random.default_rng(0)
    distributions = {"lr": FloatDistribution(0.01, 1.0, log=True), "aux_depth": IntDistribution(1, 3)}
    for _ in range(30):
        lr, depth = float(np.exp(rng.uniform(np.log(0.01), 0))), int(rng.integers(1, 4))
        # the objective depends on the depth only
        study.add_trial(optuna.trial.create_trial(params={"lr": lr, "aux_depth": depth},
                                                  distributions=distributions, value=0.5 + 0.1 * depth))
    importances = param_importances(spec)
    assert set(importances) == {"lr", "aux_depth"} and sum(importances.values()) == pytest.approx(1.0)
    assert importances["aux_depth"] > 0.9


def test_a_claim_whose_interval_spans_its_threshold_is_inconclusive_and_says_n_interval_and_budget():
    from ablate.report.claims import check_claims
    runs = []
    for rule, accs in (("bp", (90.0, 92.0, 88.0)), ("auglocal", (89.0, 93.5, 86.0))):
        runs += [run(f"c{rule}", {"rule": rule, "a": 1}, s, acc) for s, acc in enumerate(accs)]
    for r in runs:
        r.factors.pop("a")
    report = build_report(runs, study="rules", cells=[("cbp", {"rule": "bp"}), ("cauglocal", {"rule": "auglocal"})],
                          seeds=SEEDS, reference={"rule": "bp"})
    report.budget = "4 epochs × 18,000 training images"
    claim = next(c for c in check_claims(report, []) if c.claim.startswith("AugLocal's accuracy is close"))
    # Δ = −0.5 points, but the paired differences −1, +1.5, −2 give an interval far across −1
    assert claim.verdict == INCONCLUSIVE
    assert "Δ = -0.50 points" in claim.evidence and "95% CI [" in claim.evidence and "n = 3" in claim.evidence
    assert claim.evidence.endswith("budget: 4 epochs × 18,000 training images")


def test_factors_that_always_move_together_are_one_factor():
    report = build_report([r for r in factorial_runs_with_budget()], study="ladder")
    factors = {e.factor for e in report.effects.effects}
    assert factors == {"epochs+train_subset"}
    effect = next(e for e in report.effects.effects if e.quantity == "final_test_acc_pct")
    assert effect.estimate == pytest.approx(effect.marginal) == pytest.approx(5.2)


def factorial_runs_with_budget():
    for epochs, images, acc in ((2, 1000, 70.0), (4, 2000, 75.0)):
        factors = {"epochs": epochs, "train_subset": images}
        for s in SEEDS:
            yield RunRecord(run_id=f"e{epochs}{s}", cell_id=f"e{epochs}", seed=s, trial_key=f"e{epochs}-s{s}",
                            factors=factors, end_time=1, metrics={"final_test_acc": (acc + s + 0.1 * s * epochs) / 100})
