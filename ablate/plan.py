"""Auxiliary plans: which layers are local, how deep each auxiliary net is, and which
later layers it copies. Pure Python (no torch), so that `ablate describe` and study
validation can show every plan before anything is built.

Notation (AugLocal, ICLR 2024): L layers indexed 0..L-1; base auxiliary depth d; decay
coefficient tau. The last `head_layers` layers train end-to-end with the output head;
layers 0..N-1 are local, N = L - head_layers. The paper's default head group is the
last d+1 layers (N = L - d - 1). Formulas follow the released code, Python's
`round` (half to even) included.

The plan knows a learning rule only through three facts (PlanRule, which every
`ablate.rules.RuleSpec` has): whether it has local layers at all, whether its auxiliary
nets copy later layers (then the depth schedule and the selection apply), and the size
of its head group when none is set.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .errors import UserInputError

SCHEDULES = ("constant", "linear", "exponential", "step")
STRATEGIES = ("uniform", "sequential", "repetitive", "random")
# the settings a plan of layer copies is made from; a rule whose auxiliary nets are fixed
# heads ignores them
COPY_SETTINGS = ("aux_depth", "selection", "decay", "decay_coeff")


class PlanError(UserInputError):
    """An impossible plan request; the message names the option and its allowed values."""


@dataclass(frozen=True)
class LocalLayerPlan:
    layer: int
    aux_depth: int  # 0 for rules whose auxiliary nets are fixed heads
    # indices of the layers whose architecture the auxiliary net copies, in order;
    # `repetitive` repeats one index d_l times
    aux_layers: tuple[int, ...]


@dataclass(frozen=True)
class AuxPlan:
    num_layers: int
    head_layers: tuple[int, ...]
    local: tuple[LocalLayerPlan, ...]

    @property
    def num_local(self) -> int:
        return len(self.local)

    def as_dict(self) -> dict:
        return {
            "num_layers": self.num_layers,
            "head_layers": list(self.head_layers),
            "local_layers": [
                {"layer": p.layer, "aux_depth": p.aux_depth, "aux_layers": list(p.aux_layers)}
                for p in self.local
            ],
        }


# ---------------------------------------------------------------------------------------
# Depth schedules: d_i for local layer i = 0..N-1. Each takes (i, N, d, tau).


def _progress(i: int, n: int, tau: float) -> float:
    """t = (i * tau) / (N - 1): 0 at the first local layer, tau at the last."""
    return (i * tau) / (n - 1) if n > 1 else 0.0


def depth_constant(i: int, n: int, d: int, tau: float) -> int:
    """d_i = d."""
    return d


def depth_linear(i: int, n: int, d: int, tau: float) -> int:
    """The paper's pyramid: t = (i * tau) / (N - 1), d_i = max(1, round(d * (1 - t) + t)).

    Linear interpolation from d at the first local layer towards 1 at the last; tau = 1
    reaches 1, tau = 0 is constant.
    """
    t = _progress(i, n, tau)
    return max(1, round(d * (1 - t) + t))


def depth_exponential(i: int, n: int, d: int, tau: float) -> int:
    """Geometric decay: t = (i * tau) / (N - 1), d_i = max(1, round(d ** (1 - t))).

    Interpolates log-depth linearly from log d to 0, so depth falls fast early and
    slowly late; tau = 1 reaches 1 at the last local layer, tau = 0 is constant.
    """
    t = _progress(i, n, tau)
    return max(1, round(d ** (1 - t)))


def depth_step(i: int, n: int, d: int, tau: float) -> int:
    """Two steps: d_i = d for the first half (i < N / 2), then the linear schedule's
    final depth, max(1, round(d * (1 - tau) + tau)), for the second half."""
    return d if i < n / 2 else max(1, round(d * (1 - tau) + tau))


DEPTH_SCHEDULES = {
    "constant": depth_constant,
    "linear": depth_linear,
    "exponential": depth_exponential,
    "step": depth_step,
}
assert tuple(DEPTH_SCHEDULES) == SCHEDULES


# ---------------------------------------------------------------------------------------
# Selection strategies: which later layers the auxiliary net of layer l copies.


def select_uniform(l: int, depth: int, num_layers: int, seed: int) -> tuple[int, ...]:
    """The paper's rule: all of l+1..L-1 if d_l >= L-1-l, else
    [round(l + (L - l - 1) / d_l * k) for k in 1..d_l] (uniformly spaced, ending at L-1)."""
    if depth >= num_layers - 1 - l:
        return tuple(range(l + 1, num_layers))
    return tuple(round(l + (num_layers - l - 1) / depth * k) for k in range(1, depth + 1))


def select_sequential(l: int, depth: int, num_layers: int, seed: int) -> tuple[int, ...]:
    """The next d_l layers: l+1..min(l+d_l, L-1)."""
    return tuple(range(l + 1, min(l + depth, num_layers - 1) + 1))


def select_repetitive(l: int, depth: int, num_layers: int, seed: int) -> tuple[int, ...]:
    """d_l copies of layer l+1's architecture."""
    return (l + 1,) * depth


def select_random(l: int, depth: int, num_layers: int, seed: int) -> tuple[int, ...]:
    """d_l distinct layers from l+1..L-1, drawn by a generator seeded by (seed, l), sorted."""
    candidates = list(range(l + 1, num_layers))
    if depth >= len(candidates):
        return tuple(candidates)
    rng = random.Random(f"ablate-random-selection:{seed}:{l}")
    return tuple(sorted(rng.sample(candidates, depth)))


SELECTIONS = {
    "uniform": select_uniform,
    "sequential": select_sequential,
    "repetitive": select_repetitive,
    "random": select_random,
}
assert tuple(SELECTIONS) == STRATEGIES


class PlanRule(Protocol):
    """What a plan needs to know of a learning rule (see the module docstring)."""

    local: bool
    copies_layers: bool
    head_group: Callable[[int, int], int]  # (d, L) -> default head group size


def make_plan(
    num_layers: int,
    rule: PlanRule,
    *,
    aux_depth: int = 2,
    selection: str = "uniform",
    decay: str = "constant",
    decay_coeff: float = 0.5,
    head_layers: int | None = None,
    seed: int = 0,
) -> AuxPlan:
    """The auxiliary plan of one network. Raises PlanError for impossible requests."""
    if num_layers < 2:
        raise PlanError(f"the backbone has {num_layers} layer(s); local learning needs at least 2")
    if not isinstance(aux_depth, int) or aux_depth < 1:
        raise PlanError(f"--aux-depth must be an integer >= 1, got {aux_depth!r}")
    if selection not in SELECTIONS:
        raise PlanError(f"unknown --selection {selection!r}; choose one of {', '.join(STRATEGIES)}")
    if decay not in DEPTH_SCHEDULES:
        raise PlanError(f"unknown --decay {decay!r}; choose one of {', '.join(SCHEDULES)}")
    if not (isinstance(decay_coeff, (int, float)) and 0.0 <= decay_coeff <= 1.0) or math.isnan(decay_coeff):
        raise PlanError(f"--decay-coeff must lie in [0, 1], got {decay_coeff!r}")

    if rule.copies_layers and aux_depth > num_layers - 1:
        raise PlanError(f"--aux-depth {aux_depth} is deeper than a network of {num_layers} layers allows: the "
                        f"first layer's auxiliary net copies at most the {num_layers - 1} layers after it; "
                        f"choose 1..{num_layers - 1}")
    if head_layers is None:
        head_layers = rule.head_group(aux_depth, num_layers)
    if not isinstance(head_layers, int) or not 1 <= head_layers <= num_layers:
        raise PlanError(
            f"--head-layers must be an integer in 1..{num_layers} for a network of "
            f"{num_layers} layers, got {head_layers!r}"
        )
    if not rule.local:
        head_layers = num_layers

    n_local = num_layers - head_layers
    schedule = DEPTH_SCHEDULES[decay]
    select = SELECTIONS[selection]
    local = []
    for i in range(n_local):
        if not rule.copies_layers:  # fixed heads, not layer copies
            local.append(LocalLayerPlan(i, 0, ()))
            continue
        depth = schedule(i, n_local, aux_depth, decay_coeff)
        local.append(LocalLayerPlan(i, depth, select(i, depth, num_layers, seed)))
    return AuxPlan(num_layers, tuple(range(n_local, num_layers)), tuple(local))
