"""PredSim's auxiliary nets (Nøkland & Eidnes, "Training Neural Networks with Local
Error Signals", ICML 2019) as the AugLocal paper ran them as a baseline:
loss = 0.99 * similarity-matching loss + 0.01 * cross-entropy.

Followed (AugLocal's released code, `PredSim` classifier and decoder, and its run
script):
- similarity loss: MSE between the similarity matrix of a 3x3-conv projection (same
  width, no bias) of the layer output and that of the one-hot labels. A similarity
  matrix is the cosine similarity of mean-centred rows, clamped to [-1, 1]; a feature
  map with more than 3 channels and more than one row is first reduced to the
  per-channel standard deviation over positions (unbiased), anything else is flattened;
- prediction head: average pooling that brings the flattened size down to at most
  PRED_HEAD_MAX_FEATURES (kernel doubled in height, then width, in turn, until it
  fits or the kernel covers the height; padding as the original code pads), flatten,
  Linear(., classes); its logits are the ones reported;
- the weights 0.99 and 0.01 are the released run script's (--ixx 0.99 --ixy 0.01 at
  both ends, i.e. PredSim's beta = 0.99), constant over layers.

Chosen here:
- PRED_HEAD_MAX_FEATURES = 512, the released training script's `--hidden_dim` default,
  which the PredSim runs did not override (the auxiliary-net class's own default, 1024,
  is never used by those runs).
- Rows are normalised with `torch.linalg.vector_norm`, whose gradient at a zero row is
  zero, so constant features or a batch of one cannot produce NaN; the similarity loss
  is computed in float32 with autocast off.
- The projection conv gets the released code's He (fan-out) normal initialisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import AuxHead, float32_region, layerwise_baseline

SIMILARITY_WEIGHT = 0.99
CE_WEIGHT = 0.01
PRED_HEAD_MAX_FEATURES = 512


def similarity_matrix(x: torch.Tensor) -> torch.Tensor:
    """(B, B) cosine similarities of the mean-centred rows of x (features or one-hot labels)."""
    if x.dim() == 4 and x.size(1) > 3 and x.size(2) > 1:
        x = x.flatten(2).std(dim=2)
    else:
        x = x.flatten(1)
    centred = x - x.mean(dim=1, keepdim=True)
    unit = centred / (1e-8 + torch.linalg.vector_norm(centred, dim=1, keepdim=True))
    return (unit @ unit.T).clamp(-1, 1)


def prediction_pool(channels: int, size: int, max_features: int) -> tuple[nn.Module, int]:
    """(pooling module, flattened size after it) for a (channels, size, size) input."""
    kernel_h = kernel_w = 1
    out_h = out_w = size
    while channels * out_h * out_w > max_features and kernel_h < size:
        kernel_h *= 2
        out_h = math.ceil(size / kernel_h)
        if channels * out_h * out_w > max_features:
            kernel_w *= 2
            out_w = math.ceil(size / kernel_w)
    if kernel_h == 1 and kernel_w == 1:
        return nn.Identity(), channels * size * size
    # a partial last window is padded on both sides so the output is ceil(size / kernel)
    pad_h = kernel_h * (out_h - size // kernel_h) // 2
    pad_w = kernel_w * (out_w - size // kernel_w) // 2
    return nn.AvgPool2d((kernel_h, kernel_w), padding=(pad_h, pad_w)), channels * out_h * out_w


class PredSimHead(AuxHead):
    def __init__(self, channels: int, size: int, num_classes: int):
        super().__init__()
        self.projection = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        nn.init.kaiming_normal_(self.projection.weight, mode="fan_out", nonlinearity="relu")
        pool, features = prediction_pool(channels, size, PRED_HEAD_MAX_FEATURES)
        self.classifier = nn.Sequential(pool, nn.Flatten(), nn.Linear(features, num_classes))
        self.num_classes = num_classes

    def similarity_loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        projected = self.projection(h)
        with float32_region(h.device):
            target = similarity_matrix(F.one_hot(y, self.num_classes).float())
            return F.mse_loss(similarity_matrix(projected.float()), target)

    def forward(self, h: torch.Tensor, y: torch.Tensor,
                image: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.classifier(h)
        loss = SIMILARITY_WEIGHT * self.similarity_loss(h, y) + CE_WEIGHT * F.cross_entropy(logits, y)
        return loss, logits


RULE = layerwise_baseline("predsim", "0.99 x similarity-matching loss + 0.01 x cross-entropy of a pooled linear head",
                          PredSimHead)
