"""End-to-end back-propagation: no local layers, no auxiliary nets; the reference every
local rule is measured against."""

from __future__ import annotations

from torch import nn

from ..plan import COPY_SETTINGS
from .base import RuleSpec

RULE = RuleSpec(
    name="bp",
    summary="nothing local: end-to-end backpropagation",
    local=False,
    copies_layers=False,
    ignores=frozenset(COPY_SETTINGS + ("head_layers",)),
    head_group=lambda aux_depth, num_layers: num_layers,
    build_heads=lambda backbone, plan: nn.ModuleList(),
)
