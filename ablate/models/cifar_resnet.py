"""He et al. (2016)'s CIFAR ResNets: depth 6n+2, a 3x3 stem and three stages of n
BasicBlocks (16, 32, 64 channels), one backbone layer per block."""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

from torch import nn

from .blocks import BasicBlock, Bottleneck
from .base import (Backbone, BackboneError, LayerSpec, check_request, conv_out_size,
                   init_conv_bn, pooled_linear_head, scale_channels)

STAGE_CHANNELS = (16, 32, 64)


def residual_block(block: type[BasicBlock] | type[Bottleneck], in_channels: int, planes: int,
                   stride: int) -> nn.Module:
    """A residual block (torchvision's, see blocks.py) whose shortcut is a 1x1 conv + BN
    projection whenever the block changes the spatial size or the channel count, identity
    otherwise."""
    out_channels = planes * block.expansion
    projection = None
    if stride != 1 or in_channels != out_channels:
        projection = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels))
    return block(in_channels, planes, stride=stride, downsample=projection)


class CifarResNet(Backbone):
    """torchvision's BasicBlock (blocks.py) is exactly He et al.'s CIFAR block with projection
    shortcuts, so both ResNet families share it."""

    def __init__(self, depth: int, *, in_channels: int = 3, num_classes: int = 10,
                 image_size: int = 32, width: float = 1.0):
        if depth < 8 or (depth - 2) % 6:
            raise BackboneError(f"a CIFAR ResNet has depth 6n+2 with n >= 1 (8, 14, 20, 32, ...), "
                                f"got {depth}")
        name = f"resnet{depth}"
        check_request(name, in_channels=in_channels, num_classes=num_classes,
                      image_size=image_size, width=width, min_image_size=1)
        blocks_per_stage = (depth - 2) // 6

        channels = scale_channels(STAGE_CHANNELS[0], width)
        stem = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(in_channels, channels, kernel_size=3, padding=1, bias=False),
            bn=nn.BatchNorm2d(channels),
            relu=nn.ReLU(inplace=True)))
        layers = [stem]
        specs = [LayerSpec("stem", in_channels, channels, 1, image_size, 1)]
        size, reduction = image_size, 1
        for stage, stage_channels in enumerate(STAGE_CHANNELS):
            planes = scale_channels(stage_channels, width)
            for block_index in range(blocks_per_stage):
                stride = 2 if stage > 0 and block_index == 0 else 1
                size, reduction = conv_out_size(size, 3, stride, 1), reduction * stride
                layers.append(residual_block(BasicBlock, channels, planes, stride))
                specs.append(LayerSpec("basic", channels, planes, stride, size, reduction))
                channels = planes

        super().__init__(name, layers, pooled_linear_head(channels, num_classes), specs,
                         in_channels=in_channels, num_classes=num_classes, image_size=image_size)
        init_conv_bn(self)

    def fresh_layer(self, index: int, in_channels: int, downsample: bool) -> nn.Module:
        spec = self._spec_to_copy(index)
        block = residual_block(BasicBlock, in_channels, spec.out_channels, 2 if downsample else 1)
        return init_conv_bn(block)


def cifar_resnet(depth: int, **options) -> CifarResNet:
    """The CIFAR ResNet of any depth 6n+2; options: in_channels, num_classes, image_size, width."""
    return CifarResNet(depth, **options)


CIFAR_RESNETS = {f"resnet{depth}": partial(cifar_resnet, depth) for depth in (20, 32, 44, 56, 110)}
