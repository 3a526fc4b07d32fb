"""The training step and the Trainer reproduce their recorded golden values (tests/golden.py):
bit for bit on the machine that recorded them, within float rounding elsewhere."""

import json
import math

import pytest
import torch

from tests.golden import CASES, GOLDEN_FILE, machine, record_step, record_trainer

GOLDEN = json.loads(GOLDEN_FILE.read_text())
EXACT = GOLDEN["machine"] == machine()
# Another CPU or torch build may round differently; the step is then held to what
# rounding can move over a few dozen SGD steps of a tiny network.
RTOL, ATOL = 1e-3, 1e-6


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def differences(expected, actual, path="") -> list[str]:
    """Where `actual` departs from `expected`: exactly (same machine) or beyond rounding."""
    if isinstance(expected, dict) and "sha256" in expected:
        if expected["shape"] != actual["shape"] or expected["dtype"] != actual["dtype"]:
            return [f"{path}: shape/dtype {actual['shape']} {actual['dtype']}, expected {expected['shape']} "
                    f"{expected['dtype']}"]
        if EXACT:
            return [] if expected["sha256"] == actual["sha256"] else [f"{path}: bits differ (sum {actual['sum']!r}, "
                                                                      f"expected {expected['sum']!r})"]
        return [f"{path}.{key}: {actual[key]!r}, expected {expected[key]!r}" for key in ("sum", "norm")
                if not math.isclose(actual[key], expected[key], rel_tol=RTOL, abs_tol=ATOL)]
    if isinstance(expected, dict):
        if set(expected) != set(actual):
            return [f"{path}: keys {sorted(set(actual) ^ set(expected))} differ"]
        return [d for key in expected for d in differences(expected[key], actual[key], f"{path}.{key}")]
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(actual)} entries, expected {len(expected)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in differences(e, a, f"{path}[{i}]")]
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        same = actual == expected if EXACT else math.isclose(actual, expected, rel_tol=RTOL, abs_tol=ATOL)
        return [] if same else [f"{path}: {actual!r}, expected {expected!r}"]
    return [] if expected == actual else [f"{path}: {actual!r}, expected {expected!r}"]


@pytest.mark.parametrize("case", CASES)
def test_one_training_step_reproduces_its_golden_values(case):
    found = differences(GOLDEN["cases"][case]["step"], json.loads(json.dumps(record_step(case))))
    assert not found, f"{len(found)} differences, first: " + "; ".join(found[:5])


# the Trainer adds loader, schedule and evaluation to the step: one case per rule, and bf16
TRAINER_CASES = ("bp", "auglocal", "dgl", "infopro", "predsim", "auglocal-bf16")


@pytest.mark.parametrize("case", TRAINER_CASES)
def test_the_trainer_reproduces_its_golden_epochs(case):
    found = differences(GOLDEN["cases"][case]["trainer"], json.loads(json.dumps(record_trainer(case))))
    assert not found, f"{len(found)} differences, first: " + "; ".join(found[:5])


def test_the_golden_check_fails_when_the_step_changes():
    """A learning rate off by 0.2% must not pass (this is the check above, made to fail)."""
    changed = json.loads(json.dumps(record_step("auglocal", lr=0.0501)))
    found = differences(GOLDEN["cases"]["auglocal"]["step"], changed)
    assert any(".state." in d for d in found) and not any(".gradients." in d for d in found)
