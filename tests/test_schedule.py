"""The paper's learning-rate schedule, as the released code computes it per epoch."""

import math

import pytest

from ablate.engine.schedule import cosine_with_warmup, step_decay


def released_code_lr(e, E, lr0):
    # the formula as the issue quotes it from the released code (10 warm-up epochs)
    cos = 0.5 * lr0 * (1 + math.cos(math.pi * e / E))
    return cos * (e - 1) / 10 + 0.01 * (11 - e) / 10 if e <= 10 else cos


@pytest.mark.parametrize("epoch", [1, 2, 5, 10, 11, 200, 399, 400])
def test_cosine_with_ten_warmup_epochs_is_the_released_formula(epoch):
    assert cosine_with_warmup(epoch, 400, 0.8, 10) == pytest.approx(released_code_lr(epoch, 400, 0.8), abs=1e-15)


def test_warmup_starts_at_001_and_the_last_epoch_reaches_zero():
    assert cosine_with_warmup(1, 400, 0.8, 10) == pytest.approx(0.01)
    assert cosine_with_warmup(400, 400, 0.8, 10) == pytest.approx(0.0, abs=1e-12)


def test_no_warmup_is_plain_cosine():
    assert cosine_with_warmup(1, 4, 1.0, 0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_step_decay_after_each_milestone():
    assert [step_decay(e, 1.0, (2, 4), 0.1) for e in (1, 2, 3, 4, 5)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
