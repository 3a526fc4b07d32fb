"""Analyses of trained networks: features on a fixed sample set, layer × layer CKA, linear
probes, and the study file's `analysis:` block."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ablate.analysis.cka import CKAError, cka_matrix, linear_cka
from ablate.analysis.features import analysis_data, extract, reduce, representation_names, take
from ablate.analysis.probe import probe_layers
from ablate.analysis.similarity import layer_similarity
from ablate.engine import network_from_config
from ablate.config import TrainConfig
from ablate.spec import SpecError, load_study
from ablate.study import render_dry_run

CONFIG = TrainConfig(model="resnet20", width=0.25, dataset="digits", device="cpu", seed=0)


@pytest.fixture(scope="module")
def data():
    return analysis_data(CONFIG)


def network(seed: int, rule: str = "auglocal"):
    torch.manual_seed(seed)
    bundle_info = analysis_data(CONFIG).info
    return network_from_config(CONFIG.model_copy(update={"seed": seed, "rule": rule}), bundle_info)


# ---------------------------------------------------------------------------- features
def test_the_sample_set_is_the_first_test_examples_in_order_without_augmentation(data):
    first, again = take(data.test, 100, "test"), take(data.test, 100, "test")
    assert len(first) == 100 and torch.equal(first.images, again.images)
    everything = take(data.test, None, "test")
    assert torch.equal(everything.images[:100], first.images)
    assert first.split == "test"


def test_reductions_give_the_documented_widths():
    h = torch.randn(5, 8, 6, 6)
    assert reduce(h, "gap").shape == (5, 8)
    assert reduce(h, "pool2").shape == (5, 32)
    assert reduce(h, "flatten").shape == (5, 288)
    assert torch.allclose(reduce(h, "pool1"), reduce(h, "gap"), atol=1e-6)
    logits = torch.randn(5, 10)
    assert reduce(logits, "gap") is logits
    with pytest.raises(ValueError, match="gap .*poolS.*flatten"):
        reduce(h, "pool0")


def test_every_layer_and_the_output_are_representations_and_extraction_runs_in_eval_mode(data):
    net = network(0)
    net.train()
    samples = take(data.test, 64, "test")
    features = extract(net, samples.images, "gap", batch_size=16)
    assert len(features) == len(net.backbone.layers) + 1 == len(representation_names(net))
    assert representation_names(net)[-1] == "output" and features[-1].shape == (64, 10)
    assert net.training  # restored
    # eval mode: an example's features do not depend on the batch it is in
    alone = extract(net, samples.images[:1], "gap", batch_size=1)
    assert torch.allclose(alone[3][0], features[3][0], atol=1e-5)


# ---------------------------------------------------------------------------- similarity
def test_cka_matrix_holds_the_pairwise_values():
    rng = np.random.default_rng(0)
    a = [rng.normal(size=(40, d)) for d in (3, 7)]
    b = [rng.normal(size=(40, 5)) @ rng.normal(size=(5, 9)), a[0] @ rng.normal(size=(3, 3))]
    for debiased in (False, True):
        matrix = cka_matrix(a, b, debiased=debiased)
        expected = [[linear_cka(x, y, debiased=debiased) for y in b] for x in a]
        np.testing.assert_allclose(matrix, expected, rtol=1e-10)
    np.testing.assert_allclose(np.diagonal(cka_matrix(a)), 1.0)
    with pytest.raises(CKAError, match="same examples"):
        cka_matrix(a, [rng.normal(size=(39, 2))])


def test_a_network_is_fully_similar_to_itself_layer_by_layer(data):
    net = network(0)
    samples = take(data.test, 200, "test")
    for estimator in ("minibatch", "debiased", "biased"):
        similarity = layer_similarity(net, None, samples, reduction="flatten", estimator=estimator, batch_size=100)
        np.testing.assert_allclose(similarity.diagonal(), 1.0, atol=1e-9)
        assert similarity.matrix.shape == (11, 11)


def test_two_networks_minibatch_cka_tracks_full_batch_debiased_cka(data):
    first, second = network(0), network(1, "bp")
    samples = take(data.test, 300, "test")
    streamed = layer_similarity(first, second, samples, estimator="minibatch", batch_size=100)
    full = layer_similarity(first, second, samples, estimator="debiased")
    assert streamed.examples == full.examples == 300
    np.testing.assert_allclose(streamed.matrix, full.matrix, atol=0.08)
    assert not np.allclose(streamed.diagonal(), 1.0)  # different networks are not identical
    assert streamed.record() == {"estimator": "minibatch", "examples": 300, "reduction": "flatten",
                                 "batch_size": 100, "samples": "first 300 test examples, un-augmented",
                                 "kernel": "linear", "dtype": "float64"}


def test_minibatch_cka_uses_whole_batches_only(data):
    net = network(0)
    similarity = layer_similarity(net, None, take(data.test, 250, "test"), batch_size=100)
    assert similarity.examples == 200 and similarity.batch_size == 100


def test_a_same_layer_curve_needs_networks_of_the_same_depth(data):
    shallow = network(0)
    deep = network_from_config(CONFIG.model_copy(update={"model": "resnet32"}), analysis_data(CONFIG).info)
    similarity = layer_similarity(shallow, deep, take(data.test, 40, "test"), estimator="biased")
    assert similarity.matrix.shape == (11, 17)
    with pytest.raises(CKAError, match="same depth"):
        similarity.diagonal()


# ---------------------------------------------------------------------------- probes
def test_probes_read_class_information_and_choose_c_on_validation(data):
    net = network(0)
    train, val, test = take(data.train, 600, "train"), take(data.val, None, "val"), take(data.test, None, "test")
    result = probe_layers(net, train, val, test, reduction="gap")
    assert len(result.test_acc) == len(representation_names(net))
    assert result.val_examples == len(val) > 0 and result.selection == "validation split"
    assert result.test_acc.min() > 0.3  # ten classes: chance is 0.1, even untrained layers carry the digit
    assert set(result.chosen_c) <= {1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0}


def test_without_a_validation_split_probes_choose_on_held_out_training_examples(data):
    net = network(0)
    train = take(data.train, 300, "train")
    empty = take(None, None, "val")
    result = probe_layers(net, train, empty, take(data.test, 100, "test"))
    assert result.selection == "held-out training examples"
    assert (result.train_examples, result.val_examples) == (240, 60)


# ---------------------------------------------------------------------------- the study block
STUDY = """\
name: dd
settings: {dataset: digits, model: resnet20, width: 0.25, rule: auglocal, epochs: 1}
grid:
  aux_depth: [1, 2]
  decay: [constant, linear]
tie:
  decay: {aux_depth: [2]}
seeds: [0, 1]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_a_reference_the_grid_lacks_is_added_and_each_trial_gets_the_same_seed_s(tmp_path):
    spec = load_study(write(tmp_path, STUDY + "analysis: {probes: true, cka: {reference: {rule: bp}}}\n"))
    bp_trials = [t for t in spec.trials if t.config.rule == "bp"]
    assert [t.seed for t in bp_trials] == [0, 1] and spec.trials[:2] == tuple(bp_trials)  # trained first
    assert spec.added_cells == {bp_trials[0].cell_id}
    for trial in spec.trials:
        assert spec.references[trial.key].seed == trial.seed
        assert spec.references[trial.key].config.rule == "bp"
    assert spec.analysis.probes.reduction == "gap" and spec.analysis.cka.samples == 2000
    assert "(added: the CKA reference)" in render_dry_run(spec)
    assert "linear CKA to the rule=bp trial of the same seed" in render_dry_run(spec)


def test_a_reference_inside_the_grid_is_resolved_like_a_cell(tmp_path):
    spec = load_study(write(tmp_path, STUDY + "analysis: {cka: {reference: {aux_depth: 1}}}\n"))
    assert not spec.added_cells
    depth_one = {t.key for t in spec.trials if t.config.aux_depth == 1}
    assert {spec.references[t.key].key for t in spec.trials} == depth_one
    assert spec.references[next(iter(depth_one))].key == next(iter(depth_one))  # its own reference


@pytest.mark.parametrize("block, message", [
    ("{cka: {reference: {rule: bp}, sample: 10}}", ".yaml:9: key 'analysis.cka.sample': unknown analysis key; "
                                                   "did you mean 'samples'?"),
    ("{probes: {reduction: pool0}}", ".yaml:9: key 'analysis.probes.reduction': reduction 'pool0' is not one of"),
    ("{cka: {reference: {rulez: bp}}}", ".yaml:9: key 'analysis.cka.reference.rulez'"),
    ("{cka: {reference: {rule: sgd}}}", ".yaml:9: key 'analysis.cka.reference.rule'"),
    ("{cka: {samples: 100}}", ".yaml:9: key 'analysis.cka': 'reference' is required here"),
    ("{probe: true}", "did you mean 'probes'?"),
])
def test_analysis_mistakes_are_one_line_with_the_key(tmp_path, block, message):
    with pytest.raises(SpecError) as caught:
        load_study(write(tmp_path, STUDY + f"analysis: {block}\n"))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_search_cannot_name_a_cka_reference(tmp_path):
    text = ("settings: {dataset: digits, model: resnet20, width: 0.25}\nsearch:\n  space: {lr: {low: 0.01, high: 0.1}}\n"
            "  n_trials: 2\nanalysis: {cka: {reference: {rule: bp}}}\n")
    with pytest.raises(SpecError, match="a search has no fixed cells"):
        load_study(write(tmp_path, text))
