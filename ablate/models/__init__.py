"""Backbones by name, timm-style: `build_backbone("resnet32", in_channels=3, num_classes=10)`."""

from __future__ import annotations

from collections.abc import Callable

from ..registry import Registry
from .base import Backbone, BackboneError, LayerSpec
from .cifar_resnet import CIFAR_RESNETS, CifarResNet, cifar_resnet
from .imagenet_resnet import IMAGENET_RESNETS, ImageNetResNet
from .vgg import VGG, VGGS

__all__ = ["BACKBONES", "Backbone", "BackboneError", "CifarResNet", "ImageNetResNet", "LayerSpec",
           "VGG", "backbone_names", "build_backbone", "cifar_resnet"]

# name -> constructor(*, in_channels, num_classes, image_size, width) -> Backbone
BACKBONES: Registry[Callable[..., Backbone]] = Registry(
    "model", {**CIFAR_RESNETS, **VGGS, **IMAGENET_RESNETS}, error=BackboneError)


def backbone_names() -> tuple[str, ...]:
    return BACKBONES.names()


def build_backbone(name: str, *, in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
                   width: float = 1.0) -> Backbone:
    """Raises BackboneError for an unknown name or a request the backbone cannot take."""
    return BACKBONES[name](in_channels=in_channels, num_classes=num_classes,
                           image_size=image_size, width=width)
