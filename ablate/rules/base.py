"""What every learning rule is, for the rest of ablate (RuleSpec), and what every
auxiliary net is (AuxHead): a module that turns one local layer's output into a local
loss and class logits, whose loss the engine back-propagates at once."""

from __future__ import annotations

import abc
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from ..models.base import Backbone
from ..plan import COPY_SETTINGS, AuxPlan


class AuxHead(nn.Module, metaclass=abc.ABCMeta):
    # True when the local loss needs the un-normalised input image in [0, 1] (InfoPro)
    needs_image: bool = False

    @abc.abstractmethod
    def forward(self, h: torch.Tensor, y: torch.Tensor,
                image: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(local loss, class logits) for layer output `h` and labels `y`."""


def float32_region(device: torch.device):
    """Autocast switched off, for a loss that bf16 would make unsafe. On the meta device
    (where a network's cost is counted) no arithmetic runs, so there is nothing to switch."""
    return nullcontext() if device.type == "meta" else torch.autocast(device_type=device.type, enabled=False)


@dataclass(frozen=True)
class RuleSpec:
    """A learning rule: everything the plan, the settings, the study files, the dry run,
    the claims and the CLI know about it. Registered in `ablate.rules.RULES`."""

    name: str
    summary: str  # what trains each local layer, in a few words
    local: bool  # False: end-to-end back-propagation, every layer in the head group
    copies_layers: bool  # its auxiliary nets copy later layers, so depth schedule and selection apply
    ignores: frozenset[str]  # settings that do not change what it trains
    # (aux_depth d, num_layers L) -> the end-to-end head group's size when none is set
    head_group: Callable[[int, int], int]
    # (backbone, plan, options) -> one auxiliary net per local layer of the plan
    build_heads: Callable[..., nn.ModuleList]
    options: frozenset[str] = frozenset()  # keyword options build_heads takes (e.g. infopro_lambdas)

    def describe_plan(self, plan: AuxPlan) -> str:
        """The local part of a plan in a few words, for listings such as the dry run."""
        if not self.local:
            return "all end-to-end"
        if self.copies_layers:
            return f"{plan.num_local} local, aux depths " + " ".join(str(p.aux_depth) for p in plan.local)
        return f"{plan.num_local} local with {self.name} heads"


def layerwise_baseline(name: str, summary: str, head: Callable[[int, int, int], AuxHead]) -> RuleSpec:
    """A baseline as the AugLocal paper ran it: layer-wise (every layer but the last is
    local), each with a fixed head `head(channels, side, num_classes)` of its own."""
    def build(backbone: Backbone, plan: AuxPlan) -> nn.ModuleList:
        specs = backbone.specs
        return nn.ModuleList(head(specs[p.layer].out_channels, specs[p.layer].out_size, backbone.num_classes)
                             for p in plan.local)

    return RuleSpec(name=name, summary=summary, local=True, copies_layers=False, ignores=frozenset(COPY_SETTINGS),
                    head_group=lambda aux_depth, num_layers: 1, build_heads=build)
