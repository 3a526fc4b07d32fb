"""What every auxiliary net is: a module that turns one local layer's output into a
local loss and class logits. The engine back-propagates that loss at once."""

from __future__ import annotations

import abc

import torch
from torch import nn


class AuxHead(nn.Module, metaclass=abc.ABCMeta):
    # True when the local loss needs the un-normalised input image in [0, 1] (InfoPro)
    needs_image: bool = False

    @abc.abstractmethod
    def forward(self, h: torch.Tensor, y: torch.Tensor,
                image: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(local loss, class logits) for layer output `h` and labels `y`."""
