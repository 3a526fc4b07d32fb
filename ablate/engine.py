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

from .models.base import Backbone
from .plan import AuxPlan


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
        for i, layer in enumerate(self.backbone.layers):
            h = layer(h)
            if i < self.num_local:
                loss_i, logits_i = self.aux_heads[i](h, y, image)
                loss_i.backward()  # frees layer i's graph now: the memory saving
                aux_loss.append(loss_i.detach())
                aux_correct.append((logits_i.detach().argmax(1) == y).sum())
                h = h.detach()  # gradient isolation
        logits = self.backbone.head(h)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        empty = x.new_zeros(0)
        return StepOutput(
            loss=loss.detach(),
            correct=(logits.detach().argmax(1) == y).sum(),
            aux_loss=torch.stack(aux_loss) if aux_loss else empty,
            aux_correct=torch.stack(aux_correct).float() if aux_correct else empty,
        )
