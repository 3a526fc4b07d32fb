"""He et al. (2016)'s residual blocks, the two both ResNet families are built from.

They are torchvision's `BasicBlock` and `Bottleneck` (torchvision/models/resnet.py, the
groups = 1, base width 64, dilation 1 case every ResNet here uses): the same submodules
under the same names, registered in the same order (so state dicts, `named_modules()` and
the initialisation's draws are unchanged), and the same operations in the same order in
`forward` (so every number is bit for bit the same; tests/test_models.py compares both).
They live here because `import torchvision` loads all of its models and, through
`torchvision.ops`, `torch._dynamo`: 1.1 to 1.4 s of every process's start on a 2-core
CPU, paid by studies that never touch a torchvision dataset.

    basic:      x → conv3x3(stride) → BN → ReLU → conv3x3 → BN → (+ shortcut(x)) → ReLU
    bottleneck: x → conv1x1 → BN → ReLU → conv3x3(stride) → BN → ReLU → conv1x1(×4) → BN
                  → (+ shortcut(x)) → ReLU

`downsample` is the shortcut (None: identity); the caller builds it.
"""

from __future__ import annotations

from torch import Tensor, nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)
