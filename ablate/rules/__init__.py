"""Learning rules: which auxiliary net trains each local layer, registered by name.

`bp` is end-to-end back-propagation (no auxiliary nets); `auglocal` builds each
auxiliary net from copies of later layers; `dgl`, `infopro` and `predsim` are the
AugLocal paper's baselines, each a fixed head per local layer. Every module says what
it followed and where it had to choose, and ends with its RuleSpec. A new rule is one
module with a RuleSpec and one line in RULES below.
"""

from __future__ import annotations

from torch import nn

from ..errors import UserInputError
from ..models.base import Backbone
from ..plan import AuxPlan, make_plan
from ..registry import Registry
from . import auglocal, bp, dgl, infopro, predsim
from .base import AuxHead, RuleSpec


class RuleError(UserInputError):
    """An unknown rule, or a plan or option that does not fit the rule."""


RULES: Registry[RuleSpec] = Registry("rule", (bp.RULE, auglocal.RULE, dgl.RULE, infopro.RULE, predsim.RULE),
                                     error=RuleError)
BP, AUGLOCAL = bp.RULE.name, auglocal.RULE.name  # the reference and the method the paper compares

__all__ = ["AUGLOCAL", "BP", "RULES", "AuxHead", "RuleError", "RuleSpec", "build_aux_heads", "local_baselines",
           "plan_for"]


def local_baselines() -> tuple[str, ...]:
    """The local rules AugLocal is compared with: every local rule but AugLocal."""
    return tuple(name for name, rule in RULES.items() if rule.local and name != AUGLOCAL)


def plan_for(rule: str, num_layers: int, **settings) -> AuxPlan:
    """The auxiliary plan of rule `rule` for a network of `num_layers` layers
    (`settings`: aux_depth, selection, decay, decay_coeff, head_layers, seed)."""
    return make_plan(num_layers, RULES[rule], **settings)


def build_aux_heads(rule: str, backbone: Backbone, plan: AuxPlan, **options) -> nn.ModuleList:
    """One auxiliary net per local layer of `plan`, in order (none for `bp`); `options`
    are the rule's own (e.g. `infopro_lambdas` for infopro)."""
    spec = RULES[rule]
    if plan.num_layers != len(backbone.layers):
        raise RuleError(f"the plan is for {plan.num_layers} layers but {backbone.name} has "
                        f"{len(backbone.layers)}; make the plan with plan_for(rule, len(backbone.layers), ...)")
    unknown = sorted(set(options) - spec.options)
    if unknown:
        raise RuleError(f"{', '.join(unknown)} does not apply to rule {rule!r}")
    if not spec.local and plan.num_local:
        raise RuleError(f"rule {rule!r} trains every layer end-to-end; make the plan with rule='{rule}'")
    if spec.copies_layers and any(p.aux_depth < 1 for p in plan.local):
        raise RuleError(f"the plan has no auxiliary layers to copy; make it with rule='{rule}'")
    return spec.build_heads(backbone, plan, **options)
