"""DGL's auxiliary net (Belilovsky et al., "Decoupled Greedy Learning of CNNs", ICML
2020) as the AugLocal paper ran it as a baseline, trained with cross-entropy.

Followed (AugLocal's released code, `DGL`, itself taken from DGL's auxiliary-net
study): average-pool to ceil(s / 4) per side, three 1x1 conv-BN-ReLU at the layer's
width, average-pool to m = min(ceil(s / 4), 2) per side, flatten (f = C * m * m), then
an MLP Linear(f, f)-BN-ReLU, Linear(f, f)-BN-ReLU, Linear(f, classes); the hidden
linears have no bias (BN follows them). s is the layer's output side length.

Chosen here: s comes from `LayerSpec.out_size` for any backbone and image size (the
released code derives it from the CIFAR ResNet stage widths); convolutions get the
released code's He (fan-out) normal initialisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import AuxHead, layerwise_baseline


def dgl_pool_sides(size: int) -> tuple[int, int]:
    """(side after the first pooling, side fed to the MLP) for a layer output of side `size`."""
    first = math.ceil(size / 4)
    return first, min(first, 2)


def _conv_bn_relu(channels: int) -> list[nn.Module]:
    conv = nn.Conv2d(channels, channels, kernel_size=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return [conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


def _linear_bn_relu(features: int) -> list[nn.Module]:
    return [nn.Linear(features, features, bias=False), nn.BatchNorm1d(features), nn.ReLU(inplace=True)]


class DGLHead(AuxHead):
    def __init__(self, channels: int, size: int, num_classes: int):
        super().__init__()
        first, side = dgl_pool_sides(size)
        features = channels * side * side
        self.net = nn.Sequential(
            nn.AdaptiveAvgPool2d(first),
            *_conv_bn_relu(channels), *_conv_bn_relu(channels), *_conv_bn_relu(channels),
            nn.AdaptiveAvgPool2d(side),
            nn.Flatten(),
            *_linear_bn_relu(features), *_linear_bn_relu(features),
            nn.Linear(features, num_classes),
        )

    def forward(self, h: torch.Tensor, y: torch.Tensor,
                image: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(h)
        return F.cross_entropy(logits, y), logits


RULE = layerwise_baseline("dgl", "pool to 1/4 size, three 1x1 conv-BN-ReLU, pool to <= 2x2, three-layer MLP", DGLHead)
