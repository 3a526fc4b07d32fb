"""What a study's `analysis:` block (and `ablate analyze`) can ask for, with defaults.

    analysis:
      probes: {}                 # or true; linear probes on every layer
      cka:
        reference: {rule: bp}    # CKA of every trial to this cell, same seed
        samples: 2000            # first n test examples, in order, un-augmented

Every choice that changes a number (reduction, n, estimator) is recorded with it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

REDUCTION_PATTERN = re.compile(r"gap|flatten|pool([1-9][0-9]*)")


def check_reduction(value: str) -> str:
    if not isinstance(value, str) or not REDUCTION_PATTERN.fullmatch(value):
        raise ValueError(f"reduction {value!r} is not one of gap (global average pool), poolS "
                         "(adaptive average pool to S×S, e.g. pool2) or flatten")
    return value


class ProbeSettings(BaseModel):
    """Linear probes: one multinomial logistic regression per layer on frozen features."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reduction: str = Field("gap", description="gap | poolS | flatten: how a conv layer's output becomes a vector")
    train_examples: int = Field(10_000, ge=20, description="un-augmented training examples the probes fit on")
    test_examples: int | None = Field(None, ge=1, description="test examples scored (default: all)")
    batch_size: int = Field(500, ge=1)

    _reduction = field_validator("reduction")(check_reduction)


class CKASettings(BaseModel):
    """Linear CKA between every layer of a trial's network and its reference's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: dict[str, Any] = Field(description="the reference cell's settings, e.g. {rule: bp}")
    samples: int = Field(2000, ge=8, description="first n test examples, in order, un-augmented")
    reduction: str = Field("flatten", description="gap | poolS | flatten")
    estimator: Literal["minibatch", "debiased", "biased"] = "minibatch"
    batch_size: int = Field(500, ge=4, description="minibatch size of the streaming estimator")

    _reduction = field_validator("reduction")(check_reduction)


class AnalysisSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    probes: ProbeSettings | None = None
    cka: CKASettings | None = None

    @field_validator("probes", mode="before")
    @classmethod
    def _probes_switch(cls, value):
        if value is True:
            return {}
        return None if value is False else value
