"""Learning rules' auxiliary nets: AugLocal's layer copies and the paper's baselines
(DGL, InfoPro, PredSim), as the AugLocal paper ran them."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from ablate.models.blocks import BasicBlock

from ablate.models import build_backbone
from ablate.rules import RULES, RuleError, build_aux_heads, plan_for
from ablate.rules.auglocal import downsampling_steps
from ablate.rules.dgl import dgl_pool_sides
from ablate.rules.infopro import RESNET32_LAMBDAS, RESNET110_LAMBDAS, interpolate_lambdas
from ablate.rules.predsim import prediction_pool, similarity_matrix

CLASSES = 10


@pytest.fixture(scope="module")
def resnet32():
    """Full width at 32x32: layer 0 is 16ch at 32x32, layer 8 32ch at 16x16, layer 15 64ch at 8x8."""
    torch.manual_seed(0)
    return build_backbone("resnet32", in_channels=3, num_classes=CLASSES, image_size=32)


def heads_for(rule, backbone, **plan_options):
    plan = plan_for(rule, len(backbone.layers), seed=0, **plan_options)
    return plan, build_aux_heads(rule, backbone, plan)


def layer_output(backbone, layer, batch=2):
    spec = backbone.specs[layer]
    return torch.randn(batch, spec.out_channels, spec.out_size, spec.out_size)


def labels(batch=2):
    return torch.arange(batch) % CLASSES


# --- registry -----------------------------------------------------------------------------


def test_unknown_rule_is_rejected_naming_the_allowed_rules(resnet32):
    plan = plan_for("auglocal", len(resnet32.layers))
    with pytest.raises(RuleError, match="unknown rule 'fa'.*bp, auglocal, dgl, infopro, predsim"):
        build_aux_heads("fa", resnet32, plan)
    assert issubclass(RuleError, ValueError)


def test_rules_registry_lists_bp_auglocal_and_the_three_baselines():
    assert RULES.names() == ("bp", "auglocal", "dgl", "infopro", "predsim")


def test_bp_has_no_auxiliary_nets(resnet32):
    _, heads = heads_for("bp", resnet32)
    assert isinstance(heads, nn.ModuleList) and len(heads) == 0


def test_plan_of_another_size_or_rule_is_rejected(resnet32):
    with pytest.raises(RuleError, match="16"):
        build_aux_heads("dgl", resnet32, plan_for("dgl", 10))
    with pytest.raises(RuleError, match="rule='bp'"):
        build_aux_heads("bp", resnet32, plan_for("dgl", 16))
    with pytest.raises(RuleError, match="rule='auglocal'"):
        build_aux_heads("auglocal", resnet32, plan_for("dgl", 16))
    with pytest.raises(RuleError, match="infopro_lambdas"):
        build_aux_heads("dgl", resnet32, plan_for("dgl", 16), infopro_lambdas=RESNET32_LAMBDAS)


@pytest.mark.parametrize("rule", ["auglocal", "dgl", "infopro", "predsim"])
def test_one_head_per_local_layer_giving_a_scalar_loss_and_class_logits(resnet32, rule):
    plan, heads = heads_for(rule, resnet32, aux_depth=2)
    assert len(heads) == plan.num_local
    for i in (0, plan.num_local - 1):
        h = layer_output(resnet32, i)
        loss, logits = heads[i](h, labels(), torch.rand(2, 3, 32, 32))
        assert loss.shape == () and torch.isfinite(loss)
        assert logits.shape == (2, CLASSES)


# --- AugLocal -----------------------------------------------------------------------------


def test_auglocal_copies_have_their_own_parameters(resnet32):
    _, heads = heads_for("auglocal", resnet32, aux_depth=3)
    backbone_ptrs = {p.data_ptr() for p in resnet32.parameters()}
    seen = set()
    for head in heads:
        ptrs = {p.data_ptr() for p in head.parameters()}
        assert not ptrs & backbone_ptrs
        assert not ptrs & seen
        seen |= ptrs


def test_auglocal_resnet32_d2_layer0_copies_layers_8_and_15_with_one_stride2_step_each(resnet32):
    plan, heads = heads_for("auglocal", resnet32, aux_depth=2)
    assert plan.local[0].aux_layers == (8, 15)
    net = heads[0].net
    assert [type(m) for m in net] == [BasicBlock, BasicBlock, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear]
    assert net[0].conv1.stride == (2, 2) and net[1].conv1.stride == (2, 2)
    h = layer_output(resnet32, 0)  # 16ch at 32x32
    after_first = net[0](h)
    assert after_first.shape == (2, 32, 16, 16)  # like layer 8
    assert net[1](after_first).shape == (2, 64, 8, 8)  # like layer 15
    assert not any(isinstance(m, nn.BatchNorm1d) for m in net.modules())


def test_auglocal_depth_one_aux_net_has_batchnorm1d_before_the_classifier(resnet32):
    plan, heads = heads_for("auglocal", resnet32, aux_depth=1)
    assert plan.local[0].aux_depth == 1
    net = heads[0].net
    assert isinstance(net[-2], nn.BatchNorm1d) and net[-2].num_features == 64
    assert isinstance(net[-1], nn.Linear) and net[-1].in_features == 64


def test_auglocal_downsampling_carries_over_and_never_repeats(resnet32):
    specs = resnet32.specs  # reductions: layers 0-5: 1, 6-10: 2, 11-15: 4
    assert downsampling_steps(specs, 0, (8, 15)) == (True, True)
    # a jump over two downsampling layers pays one halving now and one at the next copy
    assert downsampling_steps(specs, 0, (11, 12, 13)) == (True, True, False)
    # one copy cannot pay two halvings: the rest stays unpaid, as in the released code
    assert downsampling_steps(specs, 0, (15,)) == (True,)
    # `repetitive`: copies of the same next layer downsample once
    assert downsampling_steps(specs, 10, (11, 11, 11)) == (True, False, False)
    assert downsampling_steps(specs, 3, (4, 5)) == (False, False)
    # an earlier, less reduced layer owes nothing (no negative debt)
    assert downsampling_steps(specs, 12, (3, 14)) == (False, False)


def test_auglocal_repetitive_plan_builds_and_runs(resnet32):
    plan, heads = heads_for("auglocal", resnet32, aux_depth=3, selection="repetitive")
    assert plan.local[5].aux_layers == (6, 6, 6)
    loss, logits = heads[5](layer_output(resnet32, 5), labels())
    assert torch.isfinite(loss) and logits.shape == (2, CLASSES)


# --- DGL ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size, sides", [(32, (8, 2)), (16, (4, 2)), (8, (2, 2)), (7, (2, 2)),
                                         (4, (1, 1)), (1, (1, 1))])
def test_dgl_pools_to_a_quarter_then_to_at_most_2x2(size, sides):
    assert dgl_pool_sides(size) == sides


def test_dgl_head_is_three_1x1_convs_then_a_three_layer_mlp(resnet32):
    _, heads = heads_for("dgl", resnet32)
    net = heads[0].net  # layer 0: 16ch at 32x32
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(16, 16, (1, 1))] * 3
    assert net[0].output_size == 8
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in linears] == [(64, 64), (64, 64), (64, CLASSES)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in net) == 2
    assert heads[0](layer_output(resnet32, 0), labels())[1].shape == (2, CLASSES)


# --- InfoPro ------------------------------------------------------------------------------


def test_infopro_lambdas_interpolate_from_the_first_to_the_last_local_layer():
    weights = interpolate_lambdas(15, RESNET32_LAMBDAS)
    assert weights[0] == pytest.approx((5.0, 0.05))
    assert weights[-1] == pytest.approx((0.2, 0.5))
    assert weights[7] == pytest.approx((2.6, 0.275))
    assert interpolate_lambdas(1, RESNET32_LAMBDAS) == [pytest.approx((5.0, 0.05))]


def test_infopro_defaults_follow_resnet32_and_resnet110_and_can_be_overridden(resnet32):
    _, heads = heads_for("infopro", resnet32)
    assert (heads[0].recon_weight, heads[0].ce_weight) == pytest.approx(RESNET32_LAMBDAS[0])
    assert (heads[-1].recon_weight, heads[-1].ce_weight) == pytest.approx(RESNET32_LAMBDAS[1])

    resnet110 = build_backbone("resnet110", in_channels=1, num_classes=CLASSES, image_size=8, width=0.125)
    _, heads = heads_for("infopro", resnet110)
    assert (heads[0].recon_weight, heads[0].ce_weight) == pytest.approx(RESNET110_LAMBDAS[0])
    assert (heads[-1].recon_weight, heads[-1].ce_weight) == pytest.approx(RESNET110_LAMBDAS[1])

    plan = plan_for("infopro", 16)
    heads = build_aux_heads("infopro", resnet32, plan, infopro_lambdas=((1.0, 2.0), (3.0, 4.0)))
    assert (heads[0].recon_weight, heads[0].ce_weight) == (1.0, 2.0)
    assert (heads[-1].recon_weight, heads[-1].ce_weight) == (3.0, 4.0)


def test_infopro_classifier_doubles_width_with_stride2_only_before_the_last_stage(resnet32):
    _, heads = heads_for("infopro", resnet32)
    early, last_stage = heads[0].classifier[0], heads[14].classifier[0]
    assert (early.in_channels, early.out_channels, early.stride) == (16, 32, (2, 2))
    assert (last_stage.in_channels, last_stage.out_channels, last_stage.stride) == (64, 64, (1, 1))
    assert heads[0].classifier[-3].out_features == 128


def test_infopro_reconstruction_is_bce_against_the_image_decoded_at_image_size(resnet32):
    _, heads = heads_for("infopro", resnet32)
    head = heads[8]
    assert head.needs_image
    h = layer_output(resnet32, 8)  # 32ch at 16x16
    image = torch.rand(2, 3, 32, 32)
    up = F.interpolate(h, size=(32, 32), mode="bilinear", align_corners=True)
    expected = F.binary_cross_entropy(torch.sigmoid(head.decoder(up)), image)
    assert head.reconstruction_loss(h, image).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="image"):
        head(h, labels())


@pytest.mark.parametrize("batch", [1, 2])
def test_infopro_loss_is_finite_in_float32_under_bf16_autocast(resnet32, batch):
    _, heads = heads_for("infopro", resnet32)
    h = layer_output(resnet32, 3, batch).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        recon = heads[3].reconstruction_loss(h, torch.rand(batch, 3, 32, 32))
    assert recon.dtype == torch.float32 and torch.isfinite(recon)
    recon.backward()
    assert torch.isfinite(h.grad).all()


# --- PredSim ------------------------------------------------------------------------------


def test_predsim_similarity_of_one_hot_labels_is_the_class_block_matrix():
    y = torch.tensor([0, 0, 1, 2, 1])
    similarity = similarity_matrix(F.one_hot(y, CLASSES).float())
    same = y[:, None] == y[None, :]
    expected = torch.where(same, torch.tensor(1.0), torch.tensor(-1.0 / (CLASSES - 1)))
    torch.testing.assert_close(similarity, expected)


def test_predsim_similarity_uses_per_channel_spatial_std_of_feature_maps():
    x = torch.randn(4, 8, 5, 5)
    torch.testing.assert_close(similarity_matrix(x), similarity_matrix(x.flatten(2).std(dim=2)))
    few_channels = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(similarity_matrix(few_channels), similarity_matrix(few_channels.flatten(1)))


@pytest.mark.parametrize("channels, size", [(16, 32), (32, 16), (64, 8), (3, 7), (64, 7), (600, 3), (8, 1)])
def test_predsim_prediction_pool_flattens_to_at_most_512_where_it_can(channels, size):
    pool, features = prediction_pool(channels, size, 512)
    flat = pool(torch.randn(1, channels, size, size)).flatten(1)
    assert flat.shape[1] == features
    assert features <= max(512, channels)


def test_predsim_resnet32_first_layer_pools_16x32x32_to_512_features():
    pool, features = prediction_pool(16, 32, 512)
    assert features == 512 and pool.kernel_size == (8, 4)


def test_predsim_similarity_of_constant_features_has_zero_not_nan_gradient():
    x = torch.ones(2, 8, 4, 4, requires_grad=True)  # zero spatial std: every row is zero
    similarity = similarity_matrix(x)
    similarity.sum().backward()
    assert torch.equal(similarity, torch.zeros(2, 2))
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("batch", [1, 2])
def test_predsim_loss_has_no_nan_for_tiny_batches_and_constant_features(resnet32, batch):
    _, heads = heads_for("predsim", resnet32)
    for h in (layer_output(resnet32, 2, batch), torch.ones(batch, 16, 32, 32)):
        h.requires_grad_()
        loss, _ = heads[2](h, labels(batch))
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.isfinite(h.grad).all()
        assert all(torch.isfinite(p.grad).all() for p in heads[2].parameters() if p.grad is not None)


def test_predsim_loss_weighs_similarity_099_and_cross_entropy_001(resnet32):
    _, heads = heads_for("predsim", resnet32)
    h, y = layer_output(resnet32, 2, 4), labels(4)
    loss, logits = heads[2](h, y)
    expected = 0.99 * heads[2].similarity_loss(h, y) + 0.01 * F.cross_entropy(logits, y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
