"""The gradient-isolated training step, in one place.

Layer i < N (a local layer) is trained only by its auxiliary net's loss: the loss is
back-propagated as soon as it is computed, which frees the layer's activations before
the next layer runs, and the layer's output is detached before it feeds layer i+1, so
no gradient crosses a layer boundary. The head group (layers N..L-1 and the output
head) is trained end-to-end by the cross-entropy of the output head. With N = 0 this
is plain back-propagation (the `bp` rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models.base import Backbone
from ..plan import AuxPlan


@dataclass
class StepOutput:
    """Detached results of one step; tensors stay on the device (no host sync)."""

    loss: torch.Tensor  # output-head cross-entropy, scalar
    correct: torch.Tensor  # output-head correct predictions in the batch, scalar
    aux_loss: torch.Tensor  # (N,) local losses
    aux_correct: torch.Tensor  # (N,) local auxiliary classifiers' correct predictions


class LocalNetwork(nn.Module):
    """A backbone, its auxiliary plan, and one auxiliary net per local layer."""

    def __init__(self, backbone: Backbone, plan: AuxPlan, aux_heads: nn.ModuleList,
                 mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        if len(aux_heads) != plan.num_local:
            raise ValueError(f"plan has {plan.num_local} local layers but {len(aux_heads)} auxiliary nets")
        self.backbone = backbone
        self.plan = plan
        self.aux_heads = aux_heads
        # to give InfoPro's decoder the image in [0, 1]
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        # The units the step runs: plain objects over the modules above (as modules they
        # would list every parameter twice in the state dict); deepcopy keeps them shared.
        layers = backbone.layers
        self._local_units = [LocalUnit(layers[i], aux_heads[i]) for i in range(plan.num_local)]
        self._head_unit = HeadUnit(layers[plan.num_local:], backbone.head)

    @property
    def num_local(self) -> int:
        return self.plan.num_local

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: the backbone alone (auxiliary nets are training scaffolding)."""
        return self.backbone(x)

    def layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output, then the logits (for probes and CKA)."""
        outputs = []
        for layer in self.backbone.layers:
            x = layer(x)
            outputs.append(x)
        outputs.append(self.backbone.head(x))
        return outputs

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        """Forward and backward of one batch; the caller steps the optimiser."""
        needs_image = any(head.needs_image for head in self.aux_heads)
        image = (x * self.std + self.mean).clamp_(0, 1) if needs_image else None
        aux_loss, aux_correct = [], []
        h = x
        for unit in self._local_units:
            h, loss_i, logits_i = unit(h, y, image)
            loss_i.backward()  # frees layer i's graph now: the memory saving
            aux_loss.append(loss_i.detach())
            aux_correct.append((logits_i.detach().argmax(1) == y).sum())
            h = h.detach()  # gradient isolation
        loss, logits = self._head_unit(h, y)
        loss.backward()
        empty = x.new_zeros(0)
        return StepOutput(
            loss=loss.detach(),
            correct=(logits.detach().argmax(1) == y).sum(),
            aux_loss=torch.stack(aux_loss) if aux_loss else empty,
            aux_correct=torch.stack(aux_correct).float() if aux_correct else empty,
        )

    def compile_step(self, **options) -> None:
        """Run every unit of `train_step` through torch.compile(**options): each local
        layer with its auxiliary net, and the head group. Backward calls, detaching and
        the optimiser stay outside the compiled graphs, so isolation is unchanged."""
        # All local units share one code object, and dynamo keeps at most
        # `recompile_limit` variants per code object before it silently runs the rest
        # eagerly; each unit needs at most two (full and last, smaller batch).
        limit = max(torch._dynamo.config.recompile_limit, 2 * self.num_local + 2)
        torch._dynamo.config.recompile_limit = limit
        self._local_units = [torch.compile(unit, **options) for unit in self._local_units]
        self._head_unit = torch.compile(self._head_unit, **options)


class LocalUnit:
    """Local layer i and its auxiliary net: (layer output, local loss, auxiliary logits)."""

    def __init__(self, layer: nn.Module, aux_head: nn.Module):
        self.layer, self.aux_head = layer, aux_head

    def __call__(self, h: torch.Tensor, y: torch.Tensor, image: torch.Tensor | None):
        h = self.layer(h)
        loss, logits = self.aux_head(h, y, image)
        return h, loss, logits


class HeadUnit:
    """The end-to-end head group (layers N..L-1 and the output head): (loss, logits).
    The loss is float32 whatever the autocast dtype of the logits."""

    def __init__(self, layers: nn.ModuleList, head: nn.Module):
        self.layers, self.head = layers, head

    def __call__(self, h: torch.Tensor, y: torch.Tensor):
        for layer in self.layers:
            h = layer(h)
        logits = self.head(h)
        return F.cross_entropy(logits.float(), y), logits
