"""Batch-normed VGG-11/13/16/19 (Simonyan & Zisserman's configurations A, B, D, E, as in
torchvision): one layer per conv3x3-BN-ReLU unit, a max-pool belonging to the unit it
follows. Images under 64 pixels get the CIFAR head (global pool + one linear layer),
larger ones torchvision's three-layer classifier."""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

from torch import nn

from .base import (Backbone, BackboneError, LayerSpec, check_request, conv_out_size, init_conv_bn,
                   pooled_linear_head, scale_channels)

# output channels of each conv unit; "M" is a 2x2 max-pool after the unit before it
CONFIGS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"),
}
CLASSIFIER_MIN_IMAGE_SIZE = 64  # from here on, torchvision's classifier instead of the CIFAR head
POOLED_SIZE = 7
HIDDEN_UNITS = 4096


def conv_unit(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    parts = OrderedDict(conv=nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
                        bn=nn.BatchNorm2d(out_channels), relu=nn.ReLU(inplace=True))
    if pool:
        parts["pool"] = nn.MaxPool2d(2)
    return nn.Sequential(parts)


def classifier(channels: int, num_classes: int, width: float) -> nn.Sequential:
    hidden = scale_channels(HIDDEN_UNITS, width)
    return nn.Sequential(OrderedDict(
        pool=nn.AdaptiveAvgPool2d(POOLED_SIZE), flatten=nn.Flatten(),
        fc1=nn.Linear(channels * POOLED_SIZE * POOLED_SIZE, hidden), relu1=nn.ReLU(inplace=True),
        drop1=nn.Dropout(), fc2=nn.Linear(hidden, hidden), relu2=nn.ReLU(inplace=True),
        drop2=nn.Dropout(), fc=nn.Linear(hidden, num_classes)))


def init_vgg(module: nn.Module) -> nn.Module:
    """torchvision's VGG initialisation: He et al. for convs, N(0, 0.01) for linear layers."""
    init_conv_bn(module)
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return module


class VGG(Backbone):
    def __init__(self, depth: int, *, in_channels: int = 3, num_classes: int = 10,
                 image_size: int = 32, width: float = 1.0):
        name = f"vgg{depth}"
        if depth not in CONFIGS:
            raise BackboneError(f"a VGG has depth 11, 13, 16 or 19, got {depth}")
        config = CONFIGS[depth]
        check_request(name, in_channels=in_channels, num_classes=num_classes, image_size=image_size,
                      width=width, min_image_size=2 ** config.count("M"))

        units = [(c, i + 1 < len(config) and config[i + 1] == "M")
                 for i, c in enumerate(config) if c != "M"]
        channels, size, reduction = in_channels, image_size, 1
        layers, specs = [], []
        for index, (unit_channels, pool) in enumerate(units):
            out_channels, stride = scale_channels(unit_channels, width), 2 if pool else 1
            if pool:
                size = conv_out_size(size, 2, 2)
            reduction *= stride
            layers.append(conv_unit(channels, out_channels, pool))
            specs.append(LayerSpec("stem" if index == 0 else "vgg", channels, out_channels, stride,
                                   size, reduction))
            channels = out_channels

        if image_size < CLASSIFIER_MIN_IMAGE_SIZE:
            head = pooled_linear_head(channels, num_classes)
        else:
            head = classifier(channels, num_classes, width)
        super().__init__(name, layers, head, specs,
                         in_channels=in_channels, num_classes=num_classes, image_size=image_size)
        init_vgg(self)

    def fresh_layer(self, index: int, in_channels: int, downsample: bool) -> nn.Module:
        spec = self._spec_to_copy(index)
        return init_vgg(conv_unit(in_channels, spec.out_channels, pool=downsample))


VGGS = {f"vgg{depth}": partial(VGG, depth) for depth in CONFIGS}
