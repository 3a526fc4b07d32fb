"""torchvision's ImageNet ResNets (18/34/50/101) split into layers: the stem (7x7 conv,
BN, ReLU, 3x3 max-pool) and then one layer per residual block."""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

from torch import nn

from .blocks import BasicBlock, Bottleneck
from .base import (Backbone, BackboneError, LayerSpec, check_request, conv_out_size, init_conv_bn,
                   pooled_linear_head, scale_channels)
from .cifar_resnet import residual_block

STEM_CHANNELS = 64
STAGE_PLANES = (64, 128, 256, 512)
# depth -> (block, blocks per stage), as torchvision's resnet18 ... resnet101 build them
ARCHITECTURES = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}
BLOCK_KINDS = {BasicBlock: "basic", Bottleneck: "bottleneck"}


class ImageNetResNet(Backbone):
    def __init__(self, depth: int, *, in_channels: int = 3, num_classes: int = 10,
                 image_size: int = 32, width: float = 1.0):
        name = f"resnet{depth}"
        if depth not in ARCHITECTURES:
            raise BackboneError(f"an ImageNet ResNet has depth 18, 34, 50 or 101, got {depth}")
        check_request(name, in_channels=in_channels, num_classes=num_classes,
                      image_size=image_size, width=width, min_image_size=1)
        block, blocks_per_stage = ARCHITECTURES[depth]

        channels = scale_channels(STEM_CHANNELS, width)
        stem = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(in_channels, channels, kernel_size=7, stride=2, padding=3, bias=False),
            bn=nn.BatchNorm2d(channels),
            relu=nn.ReLU(inplace=True),
            pool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1)))
        size = conv_out_size(conv_out_size(image_size, 7, 2, 3), 3, 2, 1)
        reduction = 4
        layers = [stem]
        specs = [LayerSpec("stem", in_channels, channels, 4, size, reduction)]
        for stage, (stage_planes, num_blocks) in enumerate(zip(STAGE_PLANES, blocks_per_stage)):
            planes = scale_channels(stage_planes, width)
            for block_index in range(num_blocks):
                stride = 2 if stage > 0 and block_index == 0 else 1
                size, reduction = conv_out_size(size, 3, stride, 1), reduction * stride
                out_channels = planes * block.expansion
                layers.append(residual_block(block, channels, planes, stride))
                specs.append(LayerSpec(BLOCK_KINDS[block], channels, out_channels, stride,
                                       size, reduction))
                channels = out_channels

        super().__init__(name, layers, pooled_linear_head(channels, num_classes), specs,
                         in_channels=in_channels, num_classes=num_classes, image_size=image_size)
        self.block = block
        init_conv_bn(self)

    def fresh_layer(self, index: int, in_channels: int, downsample: bool) -> nn.Module:
        spec = self._spec_to_copy(index)
        planes = spec.out_channels // self.block.expansion
        return init_conv_bn(residual_block(self.block, in_channels, planes, 2 if downsample else 1))


IMAGENET_RESNETS = {f"resnet{depth}": partial(ImageNetResNet, depth) for depth in ARCHITECTURES}
