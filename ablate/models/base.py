"""What every backbone is: an ordered list of layers, an output head, and per-layer
shape metadata that auxiliary plans and auxiliary nets are built from."""

from __future__ import annotations

import abc
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UserInputError


class BackboneError(UserInputError):
    """An impossible backbone request (unknown name, input too small, bad width)."""


@dataclass(frozen=True)
class LayerSpec:
    kind: str  # "stem", "basic", "bottleneck" or "vgg"
    in_channels: int
    out_channels: int
    stride: int  # spatial reduction applied by this layer (an ImageNet stem: 4)
    out_size: int  # output side length for the backbone's input size
    reduction: int  # cumulative spatial reduction from the input to this layer's output


class Backbone(nn.Module, metaclass=abc.ABCMeta):
    """layers[0] is the stem; layers[i] maps the output of layers[i-1] to its own output;
    `head` maps the last layer's output to logits. A family subclasses this and
    implements `fresh_layer`, which AugLocal uses to build auxiliary nets."""

    def __init__(self, name: str, layers: list[nn.Module], head: nn.Module, specs: list[LayerSpec],
                 *, in_channels: int, num_classes: int, image_size: int):
        super().__init__()
        if len(layers) != len(specs):
            raise ValueError("one LayerSpec per layer")
        self.name = name
        self.layers = nn.ModuleList(layers)
        self.head = head
        self.specs = tuple(specs)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.image_size = image_size

    @abc.abstractmethod
    def fresh_layer(self, index: int, in_channels: int, downsample: bool) -> nn.Module:
        """A new module (own, freshly initialised weights) with the architecture of layer
        `index`, reading `in_channels` channels, writing `specs[index].out_channels`, and
        halving the spatial size exactly when `downsample` is true."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.head(x)

    def _spec_to_copy(self, index: int) -> LayerSpec:
        """The spec of the layer `fresh_layer` is asked to copy; the stem is never copied
        because an auxiliary net is built only from layers after a hidden layer."""
        if index == 0:
            raise BackboneError(f"{self.name}: layer 0 is the stem, which has no fresh copy; "
                                f"ask for a layer in 1..{len(self.layers) - 1}")
        if not 0 < index < len(self.layers):
            raise BackboneError(f"{self.name} has layers 0..{len(self.layers) - 1}, "
                                f"got index {index}")
        return self.specs[index]


def check_request(name: str, *, in_channels: int, num_classes: int, image_size: int,
                  width: float, min_image_size: int) -> None:
    """Raise BackboneError, in one line that says what to change, for an impossible build."""
    if in_channels < 1:
        raise BackboneError(f"{name} needs at least 1 input channel, got {in_channels}")
    if num_classes < 1:
        raise BackboneError(f"{name} needs at least 1 class, got {num_classes}")
    if not width > 0:
        raise BackboneError(f"{name} needs a width multiplier > 0, got {width}")
    if image_size < min_image_size:
        raise BackboneError(f"{name} needs images of at least {min_image_size}x{min_image_size} "
                            f"pixels, got image_size={image_size}")


def scale_channels(channels: int, width: float) -> int:
    """A channel count times the width multiplier, rounded, never below 1."""
    return max(1, int(round(channels * width)))


def conv_out_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Side length after a convolution or pooling window (PyTorch's floor arithmetic)."""
    return (size + 2 * padding - kernel) // stride + 1


def pooled_linear_head(channels: int, num_classes: int) -> nn.Sequential:
    """Global average pool, flatten, one linear classifier: the ResNet and CIFAR-VGG head."""
    return nn.Sequential(OrderedDict(
        pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(channels, num_classes)))


def init_conv_bn(module: nn.Module) -> nn.Module:
    """He et al.'s initialisation, as in torchvision and the AugLocal code: conv weights
    ~ N(0, 2 / (k*k*out_channels)), conv biases 0, batch-norm scale 1 and shift 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module
