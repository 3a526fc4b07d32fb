"""Study files: what a valid study expands to, and how every kind of mistake is reported."""

from pathlib import Path

import pytest
import yaml

from ablate.data import DATASETS, load_data
from ablate.spec import SpecError, load_study
from ablate.study import render_dry_run

STUDIES = Path(__file__).resolve().parent.parent / "studies"
# the study files shipped in the repository, not what running them wrote under runs/
SHIPPED = sorted(p for p in STUDIES.rglob("*.yaml") if "runs" not in p.relative_to(STUDIES).parts)

SMALL = """\
settings:
  dataset: digits
  model: resnet20
  width: 0.25
grid:
  rule: [bp, auglocal]
  aux_depth: [1, 3]
seeds: [0, 1]
"""


def write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def settings_plus(line: str) -> str:
    """SMALL with one more line under settings: (it becomes line 5)."""
    return SMALL.replace("  width: 0.25\n", "  width: 0.25\n" + line + "\n")


# ---------------------------------------------------------------------------- shipped studies


def test_the_shipped_studies_are_all_there():
    names = {p.relative_to(STUDIES).as_posix() for p in SHIPPED}
    assert {"quickstart.yaml", "depth_decay.yaml", "selection_strategy.yaml", "rules.yaml",
            "paper/cifar10_resnet32.yaml", "paper/cifar10_resnet110.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(STUDIES).as_posix())
def test_every_shipped_study_validates(path):
    spec = load_study(path)
    assert spec.trials
    assert len({t.key for t in spec.trials}) == len(spec.trials)


def test_quickstart_is_bp_against_auglocal_at_two_depths_times_two_seeds():
    spec = load_study(STUDIES / "quickstart.yaml")
    assert [factors for _, factors in spec.cells()] == [
        {"rule": "bp"}, {"rule": "auglocal", "aux_depth": 1}, {"rule": "auglocal", "aux_depth": 3}]
    assert [t.seed for t in spec.trials] == [0, 1] * 3
    assert {t.config.dataset for t in spec.trials} == {"digits"}
    assert spec.reference == {"rule": "bp"}


def test_depth_decay_varies_tau_only_where_the_depth_decays():
    spec = load_study(STUDIES / "depth_decay.yaml")
    cells = [e.factors for e in spec.layout if e.cell_id not in spec.added_cells]
    assert len(cells) == 5 * (1 + 2 * 2)
    assert [factors for cell, factors in spec.cells() if cell in spec.added_cells] == [{"rule": "bp"}]  # CKA's
    # every decay at d = 1, and linear τ = 0.5 at d = 2, train the networks of constant depth: 5 aliases
    assert len(spec.trials) == (25 + 1 - 5) * 3
    constant = [f for f in cells if f["decay"] == "constant"]
    assert len(constant) == 5 and all("decay_coeff" not in f for f in constant)
    decaying = [f for f in cells if f["decay"] != "constant"]
    assert {f["decay_coeff"] for f in decaying} == {0.5, 1.0}


def test_selection_strategy_crosses_four_strategies_with_three_depths():
    spec = load_study(STUDIES / "selection_strategy.yaml")
    cells = [e.factors for e in spec.layout]
    assert len(cells) == 12
    assert {f["selection"] for f in cells} == {"uniform", "sequential", "repetitive", "random"}
    # at d = 1 every auxiliary net copies the next layer, whatever the strategy picks: one alias
    assert len(spec.cells()) == 11 and len(spec.aliases()) == 1


def test_rules_study_gives_auglocal_its_settings_and_the_other_rules_none():
    spec = load_study(STUDIES / "rules.yaml")
    configs = {t.config.rule: t.config for t in spec.trials}
    assert list(configs) == ["bp", "predsim", "dgl", "infopro", "auglocal"]
    auglocal = configs["auglocal"]
    assert (auglocal.aux_depth, auglocal.decay, auglocal.decay_coeff) == (2, "linear", 0.5)
    assert spec.reference == {"rule": "bp"}
    assert [factors for _, factors in spec.cells()] == [{"rule": r} for r in configs]


def test_the_same_training_has_the_same_cell_id_in_every_study():
    rules = {f["rule"]: cell for cell, f in load_study(STUDIES / "rules.yaml").cells()}
    depth_decay = {tuple(e.factors.values()): e.cell_id for e in load_study(STUDIES / "depth_decay.yaml").layout}
    assert rules["auglocal"] == depth_decay[(2, "linear", 0.5)]


@pytest.mark.parametrize("model, depth", [("resnet32", 2), ("resnet110", 3)])
def test_paper_studies_use_the_released_hyperparameters(model, depth):
    spec = load_study(STUDIES / "paper" / f"cifar10_{model}.yaml")
    auglocal = next(t.config for t in spec.trials if t.config.rule == "auglocal")
    assert (auglocal.dataset, auglocal.model, auglocal.aux_depth, auglocal.decay, auglocal.decay_coeff) == (
        "cifar10", model, depth, "linear", 0.5)
    for trial in spec.trials:
        c = trial.config
        assert (c.optimizer, c.momentum, c.nesterov, c.weight_decay) == ("sgd", 0.9, True, 1e-4)
        assert (c.batch_size, c.lr, c.epochs, c.schedule, c.warmup_epochs, c.val_size) == (
            1024, 0.8, 400, "cosine", 10, 0)
    assert spec.seeds == (0, 1, 2) and spec.reference == {"rule": "bp"}


def test_the_shape_a_dataset_registers_is_the_shape_it_loads_with():
    shape = DATASETS["digits"].shape
    info = load_data("digits", val_size=0).info
    assert (shape.channels, shape.image_size, shape.num_classes, shape.train_size) == (
        info.channels, info.image_size, info.num_classes, info.train_size)


# ---------------------------------------------------------------------------- expansion and ids


def test_rules_that_ignore_a_factor_collapse_its_cells(tmp_path):
    spec = load_study(write(tmp_path, SMALL))
    assert len(spec.cells()) == 3
    bp = next(t.config for t in spec.trials if t.config.rule == "bp")
    assert bp.aux_depth == 2 and bp.head_layers is None  # defaults, not the grid's values


def test_dgl_ignores_auxiliary_depth_but_keeps_head_layers(tmp_path):
    text = SMALL.replace("rule: [bp, auglocal]", "rule: [dgl]").replace("aux_depth: [1, 3]", "head_layers: [1, 2]")
    text += "cells:\n  - {rule: dgl, head_layers: 2, aux_depth: 4}\n"
    spec = load_study(write(tmp_path, text))
    assert [f for _, f in spec.cells()] == [{"rule": "dgl", "head_layers": 1}, {"rule": "dgl", "head_layers": 2}]
    assert {t.config.aux_depth for t in spec.trials} == {2}


def test_explicit_cells_follow_the_grid_and_duplicates_collapse(tmp_path):
    text = SMALL + "cells:\n  - {rule: auglocal, aux_depth: 3}\n  - {rule: auglocal, aux_depth: 5}\n"
    cells = [f for _, f in load_study(write(tmp_path, text)).cells()]
    assert cells == [{"rule": "bp"}, {"rule": "auglocal", "aux_depth": 1}, {"rule": "auglocal", "aux_depth": 3},
                     {"rule": "auglocal", "aux_depth": 5}]


def test_cells_alone_make_a_study(tmp_path):
    text = "settings: {dataset: digits, width: 0.25}\ncells:\n  - {rule: bp}\n  - {aux_depth: 1}\n"
    cells = [f for _, f in load_study(write(tmp_path, text)).cells()]
    assert cells == [{"rule": "bp"}, {"rule": "auglocal", "aux_depth": 1}]


def test_cell_ids_are_stable_and_ignore_the_seed_and_the_machine(tmp_path):
    path = write(tmp_path, SMALL)
    first, again = load_study(path), load_study(path)
    moved = load_study(path, {"data_root": "/elsewhere", "device": "cuda", "num_workers": 8,
                              "eval_batch_size": 64, "download": True})
    assert [t.key for t in first.trials] == [t.key for t in again.trials] == [t.key for t in moved.trials]
    assert all(len(t.cell_id) == 12 and int(t.cell_id, 16) >= 0 for t in first.trials)
    assert first.trials[0].key == f"{first.trials[0].cell_id}-s0"
    assert first.trials[0].cell_id == first.trials[1].cell_id  # seeds share a cell


def test_cell_ids_change_with_a_setting_that_changes_results(tmp_path):
    path = write(tmp_path, SMALL)
    ids = [cell for cell, _ in load_study(path).cells()]
    for override in ({"epochs": 3}, {"lr": 0.05}, {"bf16": True}, {"val_size": 0.2}):
        assert not set(ids) & {cell for cell, _ in load_study(path, override).cells()}, override


def test_overrides_replace_fixed_settings(tmp_path):
    spec = load_study(write(tmp_path, SMALL), {"epochs": 2, "width": 0.5})
    assert {(t.config.epochs, t.config.width) for t in spec.trials} == {(2, 0.5)}
    assert spec.fixed["epochs"] == 2


def test_loading_writes_nothing(tmp_path):
    write(tmp_path, SMALL)
    before = sorted(tmp_path.rglob("*"))
    spec = load_study(tmp_path / "study.yaml")
    render_dry_run(spec)
    assert sorted(tmp_path.rglob("*")) == before
    assert spec.directory == tmp_path.resolve() / "runs" / "study"


def test_where_results_go(tmp_path):
    text = SMALL + "name: demo\nstorage: sqlite:///x.db\ntracking: {uri: 'http://host:5000', experiment: e1}\n"
    spec = load_study(write(tmp_path, text))
    assert (spec.name, spec.storage, spec.tracking_uri, spec.experiment) == ("demo", "sqlite:///x.db",
                                                                             "http://host:5000", "e1")
    defaults = load_study(write(tmp_path, SMALL, "plain.yaml"))
    assert (defaults.name, defaults.storage, defaults.tracking_uri, defaults.experiment) == (
        "plain", None, None, "plain")


def test_exponent_numbers_read_as_numbers(tmp_path):
    spec = load_study(write(tmp_path, settings_plus("  weight_decay: 5e-4")))
    assert spec.trials[0].config.weight_decay == 5e-4
    assert yaml.safe_load("weight_decay: 5e-4") == {"weight_decay": "5e-4"}  # others' YAML unchanged


def test_dry_run_lists_every_cell_with_its_plan(tmp_path):
    spec = load_study(write(tmp_path, SMALL))
    text = render_dry_run(spec)
    for cell, _ in spec.cells():
        assert cell in text
    assert "3 cells × 2 seeds = 6 trials" in text
    assert "aux depths 1 1 1 1 1 1 1 1" in text  # resnet20 at depth 1: 8 local layers
    assert "aux depths 3 3 3 2 2 2;" in text  # the default linear decay, tau 0.5


# ---------------------------------------------------------------------------- search studies

SEARCH = """\
settings: {dataset: digits, width: 0.25}
search:
  sampler: tpe
  objectives: [best_val_acc]
  space:
    lr: {low: 0.01, high: 1.0, log: true}
    aux_depth: {low: 1, high: 5}
    decay: {choices: [linear, constant]}
  n_trials: 20
  pruner: median
"""


def test_a_search_study_has_a_space_and_no_fixed_trials(tmp_path):
    spec = load_study(write(tmp_path, SEARCH))
    assert spec.trials == () and spec.seeds == (0,)
    assert spec.search.objectives == (("best_val_acc", "maximize"),)
    assert spec.search.params["lr"] == {"kind": "float", "low": 0.01, "high": 1.0, "log": True, "step": None}
    assert spec.search.params["aux_depth"]["kind"] == "int"
    assert spec.search.params["decay"] == {"kind": "categorical", "choices": ["linear", "constant"]}
    trial = spec.trial({"lr": 0.3, "aux_depth": 4, "decay": "linear"}, seed=0)
    assert (trial.config.lr, trial.config.aux_depth, trial.factors) == (
        0.3, 4, {"lr": 0.3, "aux_depth": 4, "decay": "linear"})
    assert "20 trials" in render_dry_run(spec)


def test_nsga2_searches_accuracy_against_memory(tmp_path):
    text = SEARCH.replace("tpe", "nsga2").replace("pruner: median", "pruner: null").replace(
        "[best_val_acc]", "[best_val_acc, {metric: peak_memory_bytes_max}]")
    spec = load_study(write(tmp_path, text))
    assert spec.search.objectives == (("best_val_acc", "maximize"), ("peak_memory_bytes_max", "minimize"))


# ---------------------------------------------------------------------------- mistakes: one line each

MISTAKES = {
    "unknown setting": (settings_plus("  aux_dpth: 2"), 5, "aux_dpth", "did you mean 'aux_depth'?"),
    "wrong type": (settings_plus("  epochs: three"), 5, "epochs", "expected an integer, got 'three'"),
    "out of range": (settings_plus("  decay_coeff: 1.5"), 5, "decay_coeff", "must be <= 1, got 1.5"),
    "grid value out of range": (SMALL.replace("[1, 3]", "[1, 0]"), 7, "grid.aux_depth", "must be >= 1, got 0"),
    "unknown choice": (SMALL.replace("[bp, auglocal]", "[bp, auglocl]"), 6, "grid.rule",
                       "did you mean 'auglocal'?"),
    "unknown dataset": (SMALL.replace("digits", "fashion_mnist"), 2, "dataset", "did you mean 'fashion-mnist'?"),
    "unknown model": (SMALL.replace("resnet20", "resnet2O"), 3, "model", "unknown model 'resnet2O'"),
    "head group larger than the network": (settings_plus("  head_layers: 40"), 5, "head_layers",
                                           "more than the 10 layers of resnet20"),
    "model too big for the images": (SMALL.replace("resnet20", "vgg16"), 3, "model", "at least 32x32"),
    "combination": (settings_plus("  momentum: 0"), 5, "momentum", "nesterov needs momentum > 0"),
    "duplicate seeds": (SMALL.replace("[0, 1]", "[0, 1, 1]"), 8, "seeds", "seed 1 is listed twice"),
    "seeds not integers": (SMALL.replace("[0, 1]", "[0, one]"), 8, "seeds", "got 'one'"),
    "seeds not a list": (SMALL.replace("[0, 1]", "3"), 8, "seeds", "expected a non-empty list"),
    "grid factor also fixed": (settings_plus("  aux_depth: 2"), 8, "grid.aux_depth", "fixed in settings (line 5)"),
    "empty grid list": (SMALL.replace("[1, 3]", "[]"), 7, "grid.aux_depth", "the list is empty"),
    "grid factor without effect": (SMALL.replace("[bp, auglocal]", "[bp]"), 7, "grid.aux_depth", "no effect"),
    "key given twice": (settings_plus("  width: 0.5"), 5, "width", "given twice"),
    "setting at the top level": (SMALL + "epochs: 3\n", 9, "epochs", "put it under 'settings:'"),
    "unknown study key": (SMALL + "seed: [1]\n", 9, "seed", "did you mean 'seeds'?"),
    "tie to a value the grid lacks": (SMALL + "tie:\n  aux_depth: {rule: [dgl]}\n", 10, "tie.aux_depth.rule",
                                      "not among the grid's values"),
    "tie of a factor outside the grid": (SMALL + "tie:\n  decay: {rule: [bp]}\n", 10, "tie.decay",
                                         "only a grid factor can be tied"),
    "reference to no cell": (SMALL + "report: {reference: {aux_depth: 2}}\n", 9, "report.reference", "no cell has"),
    "grid and search": (SMALL + "search: {n_trials: 3, space: {lr: {low: 0.01, high: 1}}}\n", 9, "search",
                        "either searches or lists its cells"),
    "pruner with two objectives": (SEARCH.replace("[best_val_acc]", "[best_val_acc, time_per_epoch_s]"), 10,
                                   "search.pruner", "cannot prune a search with several objectives"),
    "nsga2 with one objective": (SEARCH.replace("tpe", "nsga2"), 3, "search.sampler", "several objectives"),
    "objective on the test set": (SEARCH.replace("[best_val_acc]", "[best_test_acc]"), 4, "search.objectives",
                                  "leaks the test set"),
    "search range upside down": (SEARCH.replace("low: 1, high: 5", "low: 5, high: 1"), 7,
                                 "search.space.aux_depth.high", "high must be above low"),
    "search range beyond the network": (SEARCH.replace("aux_depth: {low: 1, high: 5}",
                                                       "head_layers: {low: 1, high: 11}"), 7,
                                        "search.space.head_layers.high", "more than the 10 layers"),
    "several seeds for a search": (SEARCH + "seeds: [0, 1]\n", 11, "seeds", "give a single seed"),
}


@pytest.mark.parametrize("text, line, key, problem", MISTAKES.values(), ids=MISTAKES.keys())
def test_each_mistake_is_one_line_naming_file_line_and_key(tmp_path, text, line, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_study(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: key '{key}': "), message
    assert problem in message
    assert "\n" not in message
    assert (caught.value.line, caught.value.key) == (line, key)


@pytest.mark.parametrize("text, line, problem", [
    (SMALL.replace("seeds: [0, 1]", "seeds: [0, 1"), 9, "invalid YAML: did not find expected ',' or ']'"),
    (settings_plus(" epochs: 3"), 5, "invalid YAML"),
    ("", 1, "the file is empty"),
    ("# only a comment\n", 1, "the file is empty"),
    ("- a list\n", 1, "a study is a mapping"),
])
def test_unreadable_files_name_the_line(tmp_path, text, line, problem):
    path = write(tmp_path, text)
    with pytest.raises(SpecError, match=rf"^{path}:{line}: {problem}"):
        load_study(path)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(SpecError, match="missing.yaml: no such study file"):
        load_study(tmp_path / "missing.yaml")


@pytest.mark.parametrize("overrides, problem", [
    ({"aux_depth": 2}, "override 'aux_depth': aux_depth varies between this study's cells"),
    ({"epoch": 2}, "override 'epoch': unknown setting; did you mean 'epochs'?"),
    ({"epochs": "two"}, "override 'epochs': expected an integer, got 'two'"),
    ({"seed": 1}, "override 'seed': seeds are given by the top-level 'seeds: [...]' list"),
])
def test_bad_overrides_name_the_override(tmp_path, overrides, problem):
    path = write(tmp_path, SMALL)
    with pytest.raises(SpecError) as caught:
        load_study(path, overrides)
    assert str(caught.value).startswith(f"{path}: {problem}")


def test_seeds_can_be_overridden_to_try_one_seed_first(tmp_path):
    spec = load_study(write(tmp_path, SMALL), {"seeds": [1], "epochs": 2})
    assert spec.seeds == (1,) and {t.seed for t in spec.trials} == {1} and spec.fixed["epochs"] == 2
    assert spec.overrides == {"seeds": [1], "epochs": 2}  # recorded as given (the report's commands)
    with pytest.raises(SpecError, match="seeds.*listed twice"):
        load_study(write(tmp_path, SMALL), {"seeds": [0, 0]})
