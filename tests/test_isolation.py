"""Gradient isolation in the training step, and every backbone x rule x strategy x
schedule combination building and taking a training step."""

import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F

from ablate.engine import LocalNetwork
from ablate.models import backbone_names, build_backbone
from ablate.plan import SCHEDULES, STRATEGIES
from ablate.rules import build_aux_heads, plan_for

CLASSES = 10
CHANNELS = 1
BATCH = 2
WIDTH = 0.125
LOCAL_RULES = ("auglocal", "dgl", "infopro", "predsim")
CIFAR_RESNETS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tensors here are tiny: extra intra-op threads only add synchronisation, and on a
    busy 2-core machine OpenMP's spinning threads made this file over ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def image_size(name):
    return 8 if name in CIFAR_RESNETS else 32


def build_net(name, rule, *, width=WIDTH, size=None, aux_depth=2, selection="uniform",
              decay="constant", decay_coeff=0.5):
    torch.manual_seed(0)
    backbone = build_backbone(name, in_channels=CHANNELS, num_classes=CLASSES,
                              image_size=size or image_size(name), width=width)
    plan = plan_for(rule, len(backbone.layers), aux_depth=aux_depth, selection=selection,
                     decay=decay, decay_coeff=decay_coeff, seed=0)
    heads = build_aux_heads(rule, backbone, plan)
    return LocalNetwork(backbone, plan, heads, mean=(0.5,) * CHANNELS, std=(0.5,) * CHANNELS)


def batch(size, n=BATCH):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, CHANNELS, size, size, generator=generator)
    return x, torch.arange(n) % CLASSES


def losses_without_isolation(net, x, y):
    """Every local loss and the output loss computed on one graph, nothing detached."""
    image = (x * net.std + net.mean).clamp(0, 1)
    losses, h = [], x
    for i, layer in enumerate(net.backbone.layers):
        h = layer(h)
        if i < net.num_local:
            losses.append(net.aux_heads[i](h, y, image)[0])
    losses.append(F.cross_entropy(net.backbone.head(h), y))
    return losses


def owning_loss(name, num_local):
    """Index of the one loss that may train parameter `name`: its local layer's, else the output's."""
    parts = name.split(".")
    if parts[0] == "aux_heads":
        return int(parts[1])
    if parts[:2] == ["backbone", "layers"] and int(parts[2]) < num_local:
        return int(parts[2])
    return num_local


# --- isolation ----------------------------------------------------------------------------


def fast_path(net, x, fast: bool):
    """The GPU fast path's numerics on CPU: channels-last tensors under bf16 autocast."""
    if not fast:
        return net, x, contextlib.nullcontext
    net = net.to(memory_format=torch.channels_last)
    return net, x.contiguous(memory_format=torch.channels_last), lambda: torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.mark.parametrize("fast", [False, True], ids=["float32", "bf16-channels-last"])
@pytest.mark.parametrize("rule", LOCAL_RULES)
def test_each_parameter_gets_gradient_from_its_own_local_loss_only(rule, fast):
    net, x, precision = fast_path(build_net("resnet20", rule, width=0.25, size=8), batch(8)[0], fast)
    y = batch(8)[1]
    names, params = zip(*net.named_parameters())

    net.zero_grad(set_to_none=True)
    with precision():
        net.train_step(x, y)
    engine = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]

    with precision():
        losses = losses_without_isolation(net, x, y)
    per_loss = [[torch.zeros_like(p) if g is None else g
                 for p, g in zip(params, torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))]
                for loss in losses]

    for k, name in enumerate(names):
        owner = owning_loss(name, net.num_local)
        expected = per_loss[owner][k]
        # bf16 keeps 8 significant bits, so the same gradient computed twice may differ in
        # the last bits of its largest entries; a gradient leaking in from another loss
        # would be as large as the gradient itself
        atol = 2**-6 * expected.abs().max().item() if fast else 1e-6
        torch.testing.assert_close(engine[k], expected, rtol=0 if fast else 1e-4, atol=atol, msg=name)
    # without isolation, later losses would reach layer 0: the check above can fail
    first_layer = [k for k, name in enumerate(names) if name.startswith("backbone.layers.0.")]
    assert any(per_loss[j][k].abs().sum() > 0 for j in range(1, len(losses)) for k in first_layer)


def test_local_outputs_are_detached_and_their_loss_is_backpropagated_before_the_next_layer():
    net = build_net("resnet20", "auglocal", width=0.25, size=8)
    layers = net.backbone.layers
    seen = {}

    def record(i):
        def hook(module, args):
            seen[i] = (args[0].requires_grad, all(p.grad is not None for p in layers[i - 1].parameters()))
        return hook

    for i in range(1, len(layers)):
        layers[i].register_forward_pre_hook(record(i))
    net.zero_grad(set_to_none=True)
    net.train_step(*batch(8))

    assert net.num_local > 0
    for i in range(1, len(layers)):
        if i - 1 < net.num_local:  # input cut from layer i-1, whose gradient is already there
            assert seen[i] == (False, True), i
        else:  # inside the end-to-end head group
            assert seen[i] == (True, False), i


@pytest.mark.parametrize("name", ["resnet20", "vgg11", "resnet18"])
def test_bp_gives_the_gradients_of_a_plain_end_to_end_backward(name):
    net = build_net(name, "bp")
    reference = copy.deepcopy(net.backbone)
    x, y = batch(image_size(name))

    net.zero_grad(set_to_none=True)
    step = net.train_step(x, y)
    loss = F.cross_entropy(reference(x), y)
    loss.backward()

    assert net.num_local == 0 and step.aux_loss.numel() == 0
    torch.testing.assert_close(step.loss, loss.detach())
    for (name_a, a), (name_b, b) in zip(net.backbone.named_parameters(), reference.named_parameters()):
        assert name_a == name_b
        torch.testing.assert_close(a.grad, b.grad, msg=name_a)


# --- every combination builds and trains --------------------------------------------------


def assert_takes_a_training_step(net):
    size = net.backbone.image_size
    optimiser = torch.optim.SGD(net.parameters(), lr=0.1)
    before = [[p.detach().clone() for p in layer.parameters()] for layer in net.backbone.layers]
    head_before = [p.detach().clone() for p in net.backbone.head.parameters()]

    optimiser.zero_grad(set_to_none=True)
    step = net.train_step(*batch(size))
    optimiser.step()

    assert torch.isfinite(step.loss)
    assert step.aux_loss.shape == (net.num_local,) and torch.isfinite(step.aux_loss).all()
    for i, (layer, old) in enumerate(zip(net.backbone.layers, before)):
        assert any(not torch.equal(p, q) for p, q in zip(layer.parameters(), old)), f"layer {i} did not change"
    assert any(not torch.equal(p, q) for p, q in zip(net.backbone.head.parameters(), head_before))


@pytest.mark.parametrize("rule", ["bp", "dgl", "infopro", "predsim"])
@pytest.mark.parametrize("name", backbone_names())
def test_every_backbone_trains_under_every_baseline_rule(name, rule):
    assert_takes_a_training_step(build_net(name, rule))


@pytest.mark.parametrize("decay", SCHEDULES)
@pytest.mark.parametrize("selection", STRATEGIES)
@pytest.mark.parametrize("name", backbone_names())
def test_every_backbone_trains_under_auglocal_with_every_strategy_and_schedule(name, selection, decay):
    net = build_net(name, "auglocal", aux_depth=3, selection=selection, decay=decay, decay_coeff=1.0)
    depths = [p.aux_depth for p in net.plan.local]
    assert depths[0] == 3 and (decay == "constant" or depths[-1] == 1)  # both head variants are built
    assert_takes_a_training_step(net)
