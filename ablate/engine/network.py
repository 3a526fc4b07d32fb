"""The gradient-isolated training step, in one place.

Layer i < N (a local layer) is trained only by its auxiliary net's loss: the loss is
back-propagated as soon as it is computed, which frees the layer's activations before
the next layer runs, and the layer's output is detached before it feeds layer i+1, so
no gradient crosses a layer boundary. The head group (layers N..L-1 and the output
head) is trained end-to-end by the cross-entropy of the output head. With N = 0 this
is plain back-propagation (the `bp` rule).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models.base import Backbone
from ..plan import AuxPlan


@dataclass
class StepOutput:
    """Detached results of one step in one device vector (no host sync, one tensor for the
    running totals to add): the output-head loss, the N local losses, then the output
    head's and the N auxiliary classifiers' correct predictions (float counts)."""

    stats: torch.Tensor  # (2 + 2N,): [loss, *aux_loss, correct, *aux_correct]

    @property
    def num_losses(self) -> int:
        return self.stats.numel() // 2

    @property
    def loss(self) -> torch.Tensor:  # output-head cross-entropy, scalar
        return self.stats[0]

    @property
    def aux_loss(self) -> torch.Tensor:  # (N,) local losses
        return self.stats[1:self.num_losses]

    @property
    def correct(self) -> torch.Tensor:  # output-head correct predictions in the batch, scalar
        return self.stats[self.num_losses]

    @property
    def aux_correct(self) -> torch.Tensor:  # (N,) auxiliary classifiers' correct predictions
        return self.stats[self.num_losses + 1:]


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
        self.autocast_dtype: torch.dtype | None = None  # set_autocast

    def set_autocast(self, dtype: torch.dtype | None) -> None:
        """Run each unit's forward under autocast to `dtype` (None: the caller's precision).
        Inside the units, not around the step: the backward passes then run outside autocast,
        as PyTorch's AMP guidance asks (each backward op takes its forward op's dtype anyway)."""
        self.autocast_dtype = dtype
        for unit in self._local_units + [self._head_unit]:
            unit.autocast_dtype = dtype

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
        losses, counts = [], []
        h = x
        for unit in self._local_units:
            h, loss_i, correct_i = unit(h, y, image)
            loss_i.backward()  # frees layer i's graph now: the memory saving
            losses.append(loss_i.detach().float())
            counts.append(correct_i)
            h = h.detach()  # gradient isolation
        loss, correct = self._head_unit(h, y)
        loss.backward()
        return StepOutput(torch.stack([loss.detach(), *losses, correct, *counts]))

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


def _correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Correct predictions as a float count, counted inside the unit so compile fuses it."""
    return (logits.detach().argmax(1) == y).sum(dtype=torch.float32)


def _autocast(dtype: torch.dtype | None, device: torch.device):
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


class LocalUnit:
    """Local layer i and its auxiliary net: (layer output, local loss, correct predictions)."""

    def __init__(self, layer: nn.Module, aux_head: nn.Module):
        self.layer, self.aux_head = layer, aux_head
        self.autocast_dtype: torch.dtype | None = None

    def __call__(self, h: torch.Tensor, y: torch.Tensor, image: torch.Tensor | None):
        with _autocast(self.autocast_dtype, h.device):
            h = self.layer(h)
            loss, logits = self.aux_head(h, y, image)
        return h, loss, _correct(logits, y)


class HeadUnit:
    """The end-to-end head group (layers N..L-1 and the output head): (loss, correct
    predictions). The loss is float32 whatever the autocast dtype of the logits."""

    def __init__(self, layers: nn.ModuleList, head: nn.Module):
        self.layers, self.head = layers, head
        self.autocast_dtype: torch.dtype | None = None

    def __call__(self, h: torch.Tensor, y: torch.Tensor):
        with _autocast(self.autocast_dtype, h.device):
            for layer in self.layers:
                h = layer(h)
            logits = self.head(h)
        return F.cross_entropy(logits.float(), y), _correct(logits, y)
