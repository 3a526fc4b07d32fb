"""AugLocal's auxiliary net (Ma et al., ICLR 2024): the auxiliary net of local layer l is
built from fresh copies of the later layers its plan selects, then global average
pooling and a linear classifier, trained with cross-entropy.

Followed (paper and released code, `unifSamp`):
- one new module per selected layer, made by `Backbone.fresh_layer`, so the copies
  have the selected layers' architecture and their own, never shared, weights;
- channels follow the copied layers: the first copy reads layer l's width, each later
  copy reads the previous copy's output width;
- BatchNorm1d before the classifier only when d_l <= 1 (d_l is the planned depth, as
  in the released code, not the number of copies, which is smaller when fewer than
  d_l layers follow l).

Chosen here:
- The released code decides downsampling from channel ratios of the CIFAR ResNets
  (16 -> 32 -> 64 channels). We use what that ratio stands for, the spatial reduction
  in `LayerSpec.reduction`, so VGG and ImageNet ResNets (whose width and resolution do
  not change together) get the same rule: the net owes floor(log2(reduction_j /
  reduction_l)) halvings by the time it reaches copy j; a copy halves the size (one
  stride-2 step) while anything is owed, and what one copy cannot pay (a jump over
  several downsampling layers) carries over to the next copies. A copy of an earlier or
  equally reduced layer owes nothing, so `repetitive` plans never downsample twice for
  one reduction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.base import Backbone, LayerSpec
from ..plan import AuxPlan, LocalLayerPlan
from .base import AuxHead, RuleSpec


def _halvings(reduction: int, base: int) -> int:
    """floor(log2(reduction / base)), and 0 when reduction <= base."""
    return max(0, (reduction // base).bit_length() - 1)


def downsampling_steps(specs: tuple[LayerSpec, ...], layer: int, aux_layers: tuple[int, ...]) -> tuple[bool, ...]:
    """For each copied layer, in order, whether its copy halves the spatial size."""
    base = specs[layer].reduction
    applied = 0
    steps = []
    for j in aux_layers:
        downsample = _halvings(specs[j].reduction, base) - applied >= 1
        applied += downsample
        steps.append(downsample)
    return tuple(steps)


class AugLocalHead(AuxHead):
    def __init__(self, backbone: Backbone, layer_plan: LocalLayerPlan):
        super().__init__()
        specs = backbone.specs
        channels = specs[layer_plan.layer].out_channels
        modules: list[nn.Module] = []
        steps = downsampling_steps(specs, layer_plan.layer, layer_plan.aux_layers)
        for j, downsample in zip(layer_plan.aux_layers, steps):
            modules.append(backbone.fresh_layer(j, channels, downsample))
            channels = specs[j].out_channels
        modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if layer_plan.aux_depth <= 1:
            modules.append(nn.BatchNorm1d(channels))
        modules.append(nn.Linear(channels, backbone.num_classes))
        self.net = nn.Sequential(*modules)

    def forward(self, h: torch.Tensor, y: torch.Tensor,
                image: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(h)
        return F.cross_entropy(logits, y), logits


def default_head_group(aux_depth: int, num_layers: int) -> int:
    """The paper's d + 1 end-to-end layers, capped so that at least one layer is local."""
    return min(aux_depth + 1, num_layers - 1)


def build_heads(backbone: Backbone, plan: AuxPlan) -> nn.ModuleList:
    return nn.ModuleList(AugLocalHead(backbone, p) for p in plan.local)


RULE = RuleSpec(
    name="auglocal",
    summary="fresh copies (own weights) of the selected later layers, a stride-2 step wherever downsampling "
            "is owed, global pooling, BatchNorm1d when d_l <= 1, linear classifier",
    local=True,
    copies_layers=True,
    ignores=frozenset(),
    head_group=default_head_group,
    build_heads=build_heads,
)
