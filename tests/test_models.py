"""Backbones: layer lists with per-layer shape metadata that matches what they compute."""

import math

import pytest
import torch
import torchvision
from torch import nn

from ablate.models import (BACKBONES, Backbone, BackboneError, backbone_names, blocks, build_backbone,
                           cifar_resnet)

CIFAR_RESNETS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110")
VGGS = ("vgg11", "vgg13", "vgg16", "vgg19")
IMAGENET_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")
TINY = 0.25  # width multiplier that keeps every test fast


def layer_outputs(backbone: Backbone, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    outputs = []
    with torch.no_grad():
        for layer in backbone.layers:
            x = layer(x)
            outputs.append(x)
        return outputs, backbone.head(x)


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- the registry ---------------------------------------------------------------------------

def test_registry_holds_exactly_the_thirteen_named_backbones():
    assert set(backbone_names()) == set(CIFAR_RESNETS + VGGS + IMAGENET_RESNETS)
    assert set(BACKBONES) == set(backbone_names())


def test_unknown_model_error_names_the_allowed_values():
    with pytest.raises(BackboneError,
                       match=r"unknown model 'resnet7'; choose one of .*resnet32.*vgg16"):
        build_backbone("resnet7")


# --- layer counts ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, num_layers", [
    ("resnet20", 10), ("resnet32", 16), ("resnet44", 22), ("resnet56", 28), ("resnet110", 55),
    ("vgg11", 8), ("vgg13", 10), ("vgg16", 13), ("vgg19", 16),
    ("resnet18", 9), ("resnet34", 17), ("resnet50", 17), ("resnet101", 34),
])
def test_layer_count(name, num_layers):
    backbone = build_backbone(name, width=TINY)
    assert len(backbone.layers) == len(backbone.specs) == num_layers
    assert backbone.name == name


def test_generic_cifar_resnet_takes_any_depth_6n_plus_2():
    assert len(cifar_resnet(14, width=TINY).layers) == 1 + 3 * 2
    assert len(cifar_resnet(8, width=TINY).layers) == 1 + 3 * 1


@pytest.mark.parametrize("depth", [2, 21, 33])
def test_cifar_resnet_rejects_depth_not_6n_plus_2(depth):
    with pytest.raises(BackboneError, match=f"6n\\+2.*{depth}"):
        cifar_resnet(depth)


# --- metadata matches the real shapes --------------------------------------------------------

@pytest.mark.parametrize("name, image_size", [
    *[(name, size) for name in ("resnet20", "resnet32") for size in (8, 9, 32)],
    *[(name, size) for name in VGGS for size in (32, 40, 64)],
    *[(name, size) for name in IMAGENET_RESNETS for size in (32, 33, 64)],
])
def test_specs_match_every_layer_output(name, image_size):
    backbone = build_backbone(name, image_size=image_size, num_classes=5, width=TINY).eval()
    outputs, logits = layer_outputs(backbone, torch.randn(2, 3, image_size, image_size))
    in_channels, reduction = 3, 1
    for spec, out in zip(backbone.specs, outputs, strict=True):
        assert out.shape == (2, spec.out_channels, spec.out_size, spec.out_size)
        assert spec.in_channels == in_channels
        reduction *= spec.stride
        assert spec.reduction == reduction
        in_channels = spec.out_channels
    assert logits.shape == (2, 5)


def test_cifar_resnet_channels_and_strides_follow_the_paper():
    backbone = build_backbone("resnet32", width=1.0)
    assert [s.kind for s in backbone.specs] == ["stem"] + ["basic"] * 15
    assert [s.out_channels for s in backbone.specs] == [16] * 6 + [32] * 5 + [64] * 5
    assert [i for i, s in enumerate(backbone.specs) if s.stride == 2] == [6, 11]
    assert [s.out_size for s in backbone.specs] == [32] * 6 + [16] * 5 + [8] * 5


@pytest.mark.parametrize("width, channels", [(TINY, [4, 8, 16]), (0.3, [5, 10, 19]), (0.01, [1])])
def test_width_scales_every_channel_count_rounded_and_at_least_one(width, channels):
    backbone = build_backbone("resnet20", width=width)
    assert sorted({s.out_channels for s in backbone.specs}) == channels
    assert backbone.head.fc.in_features == channels[-1]


def test_imagenet_stem_reduces_by_four_and_bottlenecks_expand_by_four():
    backbone = build_backbone("resnet50", image_size=64, width=TINY)
    stem, first, last = backbone.specs[0], backbone.specs[1], backbone.specs[-1]
    assert (stem.kind, stem.stride, stem.out_size, stem.out_channels) == ("stem", 4, 16, 16)
    assert (first.kind, first.out_channels) == ("bottleneck", 64)
    assert (last.out_channels, last.reduction, last.out_size) == (512, 32, 2)


def test_vgg_pool_belongs_to_the_unit_before_it():
    backbone = build_backbone("vgg13", width=TINY)
    assert [s.stride for s in backbone.specs] == [1, 2] * 5
    assert [s.kind for s in backbone.specs] == ["stem"] + ["vgg"] * 9
    assert [s.out_size for s in backbone.specs] == [32, 16, 16, 8, 8, 4, 4, 2, 2, 1]


def test_vgg_head_is_cifar_style_below_64_pixels_and_torchvision_style_from_64():
    small = build_backbone("vgg11", image_size=32, width=TINY)
    large = build_backbone("vgg11", image_size=64, width=TINY)
    assert [type(m) for m in small.head] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear]
    assert len([m for m in large.head if isinstance(m, nn.Linear)]) == 3
    assert large.head[0].output_size == 7
    assert large.head.fc1.in_features == 128 * 49 and large.head.fc1.out_features == 1024


# --- any channels, classes and size ----------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet20", "vgg11", "resnet18", "resnet50"])
def test_one_channel_input_and_seven_classes(name):
    backbone = build_backbone(name, in_channels=1, num_classes=7, image_size=32, width=TINY)
    assert backbone.specs[0].in_channels == 1
    assert backbone(torch.randn(2, 1, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("name, image_size, minimum", [("vgg11", 16, 32), ("vgg19", 31, 32),
                                                        ("resnet20", 0, 1), ("resnet18", 0, 1)])
def test_too_small_input_is_an_error_naming_the_minimum(name, image_size, minimum):
    with pytest.raises(BackboneError, match=f"{name} needs images of at least {minimum}x{minimum} "
                                            f"pixels, got image_size={image_size}"):
        build_backbone(name, image_size=image_size)


@pytest.mark.parametrize("options, message", [
    ({"width": 0.0}, "width"), ({"in_channels": 0}, "input channel"), ({"num_classes": 0}, "class"),
])
def test_impossible_options_are_errors(options, message):
    with pytest.raises(BackboneError, match=message):
        build_backbone("resnet20", **options)


def test_smallest_vgg_input_works():
    backbone = build_backbone("vgg11", image_size=32, width=TINY).eval()
    outputs, _ = layer_outputs(backbone, torch.randn(2, 3, 32, 32))
    assert outputs[-1].shape[-1] == 1


# --- initialisation ---------------------------------------------------------------------------

def test_cifar_resnet_uses_he_initialisation():
    torch.manual_seed(0)
    backbone = build_backbone("resnet20", width=1.0)
    conv = backbone.layers[7].conv1  # 32 -> 64 channels: fan-out differs from fan-in
    expected_std = math.sqrt(2.0 / (3 * 3 * conv.out_channels))
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.05)
    bn = backbone.layers[7].bn2
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


# --- fresh layers for auxiliary nets ----------------------------------------------------------

@pytest.mark.parametrize("name, index", [("resnet20", 5), ("resnet20", 8), ("vgg13", 4),
                                         ("resnet18", 3), ("resnet50", 6)])
@pytest.mark.parametrize("downsample", [False, True])
def test_fresh_layer_has_the_layer_architecture_and_its_own_weights(name, index, downsample):
    backbone = build_backbone(name, width=TINY).eval()
    spec, in_channels = backbone.specs[index], 12
    layer = backbone.fresh_layer(index, in_channels, downsample).eval()
    with torch.no_grad():
        out = layer(torch.randn(2, in_channels, 8, 8))
    side = 4 if downsample else 8
    assert out.shape == (2, spec.out_channels, side, side)
    assert type(layer) is type(backbone.layers[index])
    backbone_params = {id(p) for p in backbone.parameters()}
    assert not backbone_params & {id(p) for p in layer.parameters()}


@pytest.mark.parametrize("name", ["resnet20", "vgg11", "resnet18"])
def test_stem_and_out_of_range_indices_have_no_fresh_layer(name):
    backbone = build_backbone(name, width=TINY)
    with pytest.raises(BackboneError, match="stem"):
        backbone.fresh_layer(0, 3, False)
    with pytest.raises(BackboneError, match=f"got index {len(backbone.layers)}"):
        backbone.fresh_layer(len(backbone.layers), 3, False)


# --- parity with torchvision ----------------------------------------------------------------

@pytest.mark.parametrize("name, reference", [
    ("resnet18", torchvision.models.resnet18), ("resnet34", torchvision.models.resnet34),
    ("resnet50", torchvision.models.resnet50), ("resnet101", torchvision.models.resnet101),
    ("vgg11", torchvision.models.vgg11_bn), ("vgg13", torchvision.models.vgg13_bn),
    ("vgg16", torchvision.models.vgg16_bn), ("vgg19", torchvision.models.vgg19_bn),
])
def test_parameter_count_equals_torchvision(name, reference):
    with torch.device("meta"):  # no memory, no init: counting only
        ours = build_backbone(name, num_classes=1000, image_size=224)
        theirs = reference(num_classes=1000)
    assert param_count(ours) == param_count(theirs)


@pytest.mark.parametrize("name, reference", [
    ("vgg11", torchvision.models.vgg11_bn), ("vgg13", torchvision.models.vgg13_bn),
    ("vgg16", torchvision.models.vgg16_bn), ("vgg19", torchvision.models.vgg19_bn),
])
def test_vgg_units_and_pools_sit_where_torchvision_puts_them(name, reference):
    with torch.device("meta"):
        ours = build_backbone(name, image_size=224)
        theirs = reference()
    units = []  # [out_channels, stride] per conv, a following max-pool making the stride 2
    for module in theirs.features:
        if isinstance(module, nn.Conv2d):
            units.append([module.out_channels, 1])
        elif isinstance(module, nn.MaxPool2d):
            units[-1][1] = 2
    assert [[s.out_channels, s.stride] for s in ours.specs] == units


def torchvision_resnet_state_as_ours(state: dict, blocks_per_stage: list[int]) -> dict:
    """conv1/bn1 -> the stem (layer 0), layerS.B -> layer 1 + blocks before it, fc -> head.fc."""
    first_layer = {f"layer{s + 1}": 1 + sum(blocks_per_stage[:s])
                   for s in range(len(blocks_per_stage))}
    outside_blocks = {"conv1": "layers.0.conv", "bn1": "layers.0.bn", "fc": "head.fc"}
    renamed = {}
    for key, value in state.items():
        top, rest = key.split(".", 1)
        if top in first_layer:
            block, rest = rest.split(".", 1)
            renamed[f"layers.{first_layer[top] + int(block)}.{rest}"] = value
        else:
            renamed[f"{outside_blocks[top]}.{rest}"] = value
    return renamed


def test_resnet18_forward_equals_torchvision_with_its_weights():
    torch.manual_seed(0)
    theirs = torchvision.models.resnet18(num_classes=1000).eval()
    ours = build_backbone("resnet18", num_classes=1000, image_size=32).eval()
    state = torchvision_resnet_state_as_ours(theirs.state_dict(), blocks_per_stage=[2, 2, 2, 2])
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("kind", ["BasicBlock", "Bottleneck"])
@pytest.mark.parametrize("stride, inplanes", [(1, None), (2, 8)])  # identity shortcut; projection
def test_residual_blocks_are_torchvisions_bit_for_bit(kind, stride, inplanes):
    """blocks.py stands in for torchvision.models.resnet: the same initial weights from the
    same seed, the same state-dict keys, and the same output and gradients, exactly."""
    from torchvision.models import resnet as reference

    ours_type, theirs_type = getattr(blocks, kind), getattr(reference, kind)
    planes = 4
    inplanes = inplanes or planes * ours_type.expansion

    def build(block_type):
        torch.manual_seed(3)
        shortcut = None
        if inplanes != planes * block_type.expansion or stride != 1:
            shortcut = nn.Sequential(nn.Conv2d(inplanes, planes * block_type.expansion, 1, stride, bias=False),
                                     nn.BatchNorm2d(planes * block_type.expansion))
        return block_type(inplanes, planes, stride=stride, downsample=shortcut)

    ours, theirs = build(ours_type), build(theirs_type)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    x = torch.randn(3, inplanes, 8, 8)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    assert torch.equal(out_ours, out_theirs)
    out_ours.square().sum().backward()
    out_theirs.square().sum().backward()
    assert torch.equal(x_ours.grad, x_theirs.grad)
    for (name, p_ours), (_, p_theirs) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert torch.equal(p_ours.grad, p_theirs.grad), name


def test_a_study_on_local_data_never_imports_torchvision():
    """torchvision costs every process 1.1-1.4 s of imports (ablate/data/__init__.py): the
    CLI, the study runner, the backbones and the digits data do not need it."""
    import subprocess
    import sys

    code = ("import sys, ablate.cli, ablate.study, ablate.report; from ablate.models import build_backbone; "
            "from ablate.data import load_data; build_backbone('resnet32'); "
            "build_backbone('resnet50', image_size=64); load_data('digits', val_size=100, split_seed=0); "
            "print('torchvision' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
