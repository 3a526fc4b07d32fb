"""Auxiliary plans: the paper's formulas, the issue's worked checks, and the extra schedules."""

import pytest

from ablate.plan import (
    PlanError,
    depth_exponential,
    depth_linear,
    depth_step,
    select_random,
    select_repetitive,
    select_sequential,
    select_uniform,
)
from ablate.rules import plan_for

RESNET32, RESNET110 = 16, 55


def depths(plan):
    return [p.aux_depth for p in plan.local]


def test_resnet32_d3_linear_pyramid():
    plan = plan_for("auglocal", RESNET32, aux_depth=3, decay="linear", decay_coeff=0.5)
    assert depths(plan) == [3] * 6 + [2] * 6
    assert plan.local[0].aux_layers == (5, 10, 15)
    assert plan.head_layers == (12, 13, 14, 15)


def test_resnet32_d2_uniform_selection():
    plan = plan_for("auglocal", RESNET32, aux_depth=2)
    assert plan.local[0].aux_layers == (8, 15)  # round(7.5) == 8


def test_resnet110_d3_linear_uses_round_half_to_even():
    plan = plan_for("auglocal", RESNET110, aux_depth=3, decay="linear", decay_coeff=0.5)
    # i = 25 gives exactly 2.5, which Python rounds to 2
    assert depths(plan) == [3] * 25 + [2] * 26
    assert plan.local[0].aux_layers == (18, 36, 54)


def test_default_head_group_is_last_d_plus_one_layers():
    for d in (1, 2, 3, 5):
        plan = plan_for("auglocal", RESNET32, aux_depth=d)
        assert plan.num_local == RESNET32 - d - 1


def test_head_layers_down_to_one_makes_every_layer_but_the_last_local():
    plan = plan_for("auglocal", RESNET32, aux_depth=2, head_layers=1)
    assert plan.num_local == 15 and plan.head_layers == (15,)


def test_bp_has_no_local_layers_and_baselines_are_layer_wise():
    assert plan_for("bp", RESNET32).num_local == 0
    dgl = plan_for("dgl", RESNET32, aux_depth=3)
    assert dgl.num_local == 15
    assert all(p.aux_depth == 0 and p.aux_layers == () for p in dgl.local)


def test_linear_decay_with_tau_one_reaches_depth_one_and_tau_zero_is_constant():
    assert depth_linear(11, 12, 5, 1.0) == 1
    assert [depth_linear(i, 12, 4, 0.0) for i in range(12)] == [4] * 12


def test_exponential_schedule_is_geometric_from_d_to_one():
    d, n = 8, 4  # t = 0, 1/3, 2/3, 1 → 8, 4, 2, 1
    assert [depth_exponential(i, n, d, 1.0) for i in range(n)] == [8, 4, 2, 1]


def test_step_schedule_halves():
    assert [depth_step(i, 6, 5, 1.0) for i in range(6)] == [5, 5, 5, 1, 1, 1]
    assert [depth_step(i, 6, 5, 0.5) for i in range(6)] == [5, 5, 5, 3, 3, 3]


def test_depth_is_never_below_one():
    for decay in ("linear", "exponential", "step"):
        plan = plan_for("auglocal", RESNET110, aux_depth=1, decay=decay, decay_coeff=1.0)
        assert min(depths(plan)) == 1


def test_uniform_takes_every_remaining_layer_when_deep_enough():
    assert select_uniform(12, 3, RESNET32, 0) == (13, 14, 15)
    assert select_uniform(13, 5, RESNET32, 0) == (14, 15)


def test_uniform_always_ends_at_the_last_layer():
    for l in range(10):
        for d in range(1, 4):
            assert select_uniform(l, d, RESNET32, 0)[-1] == RESNET32 - 1


def test_sequential_takes_the_next_layers_capped_at_the_end():
    assert select_sequential(0, 3, RESNET32, 0) == (1, 2, 3)
    assert select_sequential(13, 5, RESNET32, 0) == (14, 15)


def test_repetitive_repeats_the_next_layer():
    assert select_repetitive(4, 3, RESNET32, 0) == (5, 5, 5)


def test_random_is_distinct_sorted_and_seeded_by_trial_seed_and_layer():
    a = select_random(2, 4, RESNET110, seed=7)
    assert a == select_random(2, 4, RESNET110, seed=7)
    assert len(set(a)) == 4 and list(a) == sorted(a) and min(a) > 2
    draws = {select_random(2, 4, RESNET110, seed=s) for s in range(20)}
    assert len(draws) > 1
    # the layer index is part of the seed: shifting candidates by one is not the same draw
    shifted = [tuple(j - 1 for j in select_random(3, 4, RESNET110, seed=s)) for s in range(20)]
    assert shifted != [select_random(2, 4, RESNET110, seed=s) for s in range(20)]


def test_random_plan_changes_with_seed():
    a = plan_for("auglocal", RESNET110, aux_depth=3, selection="random", seed=1)
    b = plan_for("auglocal", RESNET110, aux_depth=3, selection="random", seed=2)
    assert a.local != b.local


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"aux_depth": 0}, "--aux-depth"),
        ({"selection": "greedy"}, "--selection"),
        ({"decay": "cosine"}, "--decay"),
        ({"decay_coeff": 1.5}, "--decay-coeff"),
        ({"decay_coeff": -0.1}, "--decay-coeff"),
        ({"head_layers": 17}, "--head-layers"),
        ({"head_layers": 0}, "--head-layers"),
    ],
)
def test_impossible_requests_name_the_option(kwargs, option):
    with pytest.raises(PlanError, match=option):
        plan_for("auglocal", RESNET32, **kwargs)


def test_plan_as_dict_is_json_ready():
    d = plan_for("auglocal", RESNET32, aux_depth=2).as_dict()
    assert d["num_layers"] == 16 and d["local_layers"][0] == {"layer": 0, "aux_depth": 2, "aux_layers": [8, 15]}
