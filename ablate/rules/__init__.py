"""Learning rules: which auxiliary net trains each local layer.

`bp` is end-to-end back-propagation (no auxiliary nets); `auglocal` builds each
auxiliary net from copies of later layers; `dgl`, `infopro` and `predsim` are the
AugLocal paper's baselines, each a fixed head per local layer. Every module says what
it followed and where it had to choose.
"""

from __future__ import annotations

from torch import nn

from ..errors import UserInputError
from ..models.base import Backbone
from ..plan import AuxPlan
from .auglocal import AugLocalHead
from .base import AuxHead
from .dgl import DGLHead
from .infopro import InfoProHead, Lambdas, default_lambdas, interpolate_lambdas
from .predsim import PredSimHead

RULES = ("bp", "auglocal", "dgl", "infopro", "predsim")

__all__ = ["RULES", "AuxHead", "RuleError", "build_aux_heads"]


class RuleError(UserInputError):
    """An unknown rule, or a plan or option that does not fit the rule."""


def build_aux_heads(rule: str, backbone: Backbone, plan: AuxPlan, *,
                    infopro_lambdas: Lambdas | None = None) -> nn.ModuleList:
    """One auxiliary net per local layer of `plan`, in order (none for `bp`).

    `infopro_lambdas=((lambda_r, lambda_c) of the first local layer, (...) of the last)`
    overrides InfoPro's paper default (see `ablate.rules.infopro`).
    """
    if rule not in RULES:
        raise RuleError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    if plan.num_layers != len(backbone.layers):
        raise RuleError(f"the plan is for {plan.num_layers} layers but {backbone.name} has "
                        f"{len(backbone.layers)}; make the plan with make_plan(len(backbone.layers), ...)")
    if infopro_lambdas is not None and rule != "infopro":
        raise RuleError(f"infopro_lambdas applies to rule 'infopro' only, not {rule!r}")
    if rule == "bp":
        if plan.num_local:
            raise RuleError("rule 'bp' trains every layer end-to-end; make the plan with rule='bp'")
        return nn.ModuleList()
    if rule == "auglocal":
        if any(p.aux_depth < 1 for p in plan.local):
            raise RuleError("the plan has no auxiliary layers to copy; make it with rule='auglocal'")
        return nn.ModuleList(AugLocalHead(backbone, p) for p in plan.local)

    specs = backbone.specs
    classes = backbone.num_classes
    if rule == "dgl":
        return nn.ModuleList(DGLHead(specs[p.layer].out_channels, specs[p.layer].out_size, classes)
                             for p in plan.local)
    if rule == "predsim":
        return nn.ModuleList(PredSimHead(specs[p.layer].out_channels, specs[p.layer].out_size, classes)
                             for p in plan.local)
    lambdas = interpolate_lambdas(plan.num_local, infopro_lambdas or default_lambdas(len(backbone.layers)))
    last_reduction = specs[-1].reduction
    return nn.ModuleList(
        InfoProHead(specs[p.layer].out_channels, classes,
                    downsample=specs[p.layer].reduction < last_reduction,
                    image_size=backbone.image_size, image_channels=backbone.in_channels,
                    recon_weight=recon, ce_weight=ce)
        for p, (recon, ce) in zip(plan.local, lambdas)
    )
