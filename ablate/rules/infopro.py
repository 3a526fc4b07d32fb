"""InfoPro's auxiliary nets (Wang et al., "Revisiting Locally Supervised Learning",
ICLR 2021) as the AugLocal paper ran them as a baseline: a classifier and an image
decoder, loss = lambda_r * reconstruction BCE + lambda_c * cross-entropy.

Followed (AugLocal's released code, `InfoPro` classifier and `2c` decoder, and its
run script):
- classifier: conv3x3 (doubling the width with stride 2 for layers before the last
  stage, same width and stride 1 in it), BN, ReLU, global average pool, Linear(., 128),
  ReLU, Linear(128, classes);
- decoder: bilinear upsampling (align_corners=True) of the layer output to the image
  size, conv3x3 to 12 channels, BN, ReLU, conv3x3 to the image's channels, sigmoid,
  binary cross-entropy against the un-normalised image in [0, 1];
- (lambda_r, lambda_c) interpolate linearly from the first local layer (ratio 0) to the
  last (ratio 1): ratio = i / (N - 1), 0 when N = 1. The paper's settings: resnet32
  (5, 0.05) -> (0.2, 0.5); resnet110 (5, 0) -> (0.5, 1).

Chosen here:
- "Before the last stage" means a spatial reduction smaller than the last layer's, so
  the rule carries over to VGG and ImageNet ResNets.
- Which paper setting a backbone gets by default: the resnet110 one for backbones of at
  least DEEP_BACKBONE_LAYERS layers (resnet110 has 55, the next deepest CIFAR ResNet,
  resnet56, 28), the resnet32 one otherwise; `build_aux_heads(...,
  infopro_lambdas=((r0, c0), (r1, c1)))` overrides it.
- The decoder ends in logits and the loss is `binary_cross_entropy_with_logits`: the
  same function as sigmoid followed by BCE (up to BCELoss's clamp of log at -100), but
  stable, and it is computed in float32 with autocast off, since BCE on bf16
  probabilities is unsafe.
- Convolutions get the released code's He (fan-out) normal initialisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.base import Backbone
from ..plan import COPY_SETTINGS, AuxPlan
from .base import AuxHead, RuleSpec, float32_region

Lambdas = tuple[tuple[float, float], tuple[float, float]]  # ((lambda_r, lambda_c) first, (...) last)

RESNET32_LAMBDAS: Lambdas = ((5.0, 0.05), (0.2, 0.5))
RESNET110_LAMBDAS: Lambdas = ((5.0, 0.0), (0.5, 1.0))
DEEP_BACKBONE_LAYERS = 50
CLASSIFIER_HIDDEN = 128
DECODER_HIDDEN = 12


def default_lambdas(num_layers: int) -> Lambdas:
    """The paper's setting for a backbone of `num_layers` layers."""
    return RESNET110_LAMBDAS if num_layers >= DEEP_BACKBONE_LAYERS else RESNET32_LAMBDAS


def interpolate_lambdas(num_local: int, lambdas: Lambdas) -> list[tuple[float, float]]:
    """(lambda_r, lambda_c) for each of `num_local` local layers, first to last."""
    (r0, c0), (r1, c1) = lambdas
    weights = []
    for i in range(num_local):
        ratio = i / (num_local - 1) if num_local > 1 else 0.0
        weights.append((r0 * (1 - ratio) + r1 * ratio, c0 * (1 - ratio) + c1 * ratio))
    return weights


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=bias)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


class InfoProHead(AuxHead):
    needs_image = True

    def __init__(self, channels: int, num_classes: int, *, downsample: bool, image_size: int,
                 image_channels: int, recon_weight: float, ce_weight: float):
        super().__init__()
        width = 2 * channels if downsample else channels
        self.classifier = nn.Sequential(
            _conv3x3(channels, width, stride=2 if downsample else 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, CLASSIFIER_HIDDEN),
            nn.ReLU(inplace=True),
            nn.Linear(CLASSIFIER_HIDDEN, num_classes),
        )
        self.decoder = nn.Sequential(
            _conv3x3(channels, DECODER_HIDDEN),
            nn.BatchNorm2d(DECODER_HIDDEN),
            nn.ReLU(inplace=True),
            _conv3x3(DECODER_HIDDEN, image_channels),
        )
        self.image_size = image_size
        self.recon_weight = recon_weight
        self.ce_weight = ce_weight

    def reconstruction_loss(self, h: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        upsampled = F.interpolate(h, size=(self.image_size, self.image_size), mode="bilinear", align_corners=True)
        recon_logits = self.decoder(upsampled)
        with float32_region(h.device):
            return F.binary_cross_entropy_with_logits(recon_logits.float(), image.float())

    def forward(self, h: torch.Tensor, y: torch.Tensor,
                image: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if image is None:
            raise ValueError("InfoPro's decoder needs the un-normalised image; pass `image`")
        logits = self.classifier(h)
        loss = self.recon_weight * self.reconstruction_loss(h, image) + self.ce_weight * F.cross_entropy(logits, y)
        return loss, logits


def build_heads(backbone: Backbone, plan: AuxPlan, infopro_lambdas: Lambdas | None = None) -> nn.ModuleList:
    """`infopro_lambdas` = ((lambda_r, lambda_c) of the first local layer, (...) of the last)
    overrides the paper's default for the backbone's depth."""
    specs = backbone.specs
    lambdas = interpolate_lambdas(plan.num_local, infopro_lambdas or default_lambdas(len(backbone.layers)))
    last_reduction = specs[-1].reduction
    return nn.ModuleList(
        InfoProHead(specs[p.layer].out_channels, backbone.num_classes,
                    downsample=specs[p.layer].reduction < last_reduction,
                    image_size=backbone.image_size, image_channels=backbone.in_channels,
                    recon_weight=recon, ce_weight=ce)
        for p, (recon, ce) in zip(plan.local, lambdas)
    )


RULE = RuleSpec(
    name="infopro",
    summary="conv3x3 classifier head + image-reconstruction decoder, lambda_r * BCE + lambda_c * CE with the "
            "lambdas interpolated over depth",
    local=True,
    copies_layers=False,
    ignores=frozenset(COPY_SETTINGS),
    head_group=lambda aux_depth, num_layers: 1,  # layer-wise, as the AugLocal paper ran it
    build_heads=build_heads,
    options=frozenset({"infopro_lambdas"}),
)
