"""What a network costs, layer by layer: parameters and forward FLOPs of every auxiliary
net, counted by torch's own FLOP counter for one example, against the backbone.

This is the one place a network's cost is computed. `network_cost` builds the network
on the meta device, which holds no memory, draws no random numbers and runs no kernels,
so the figures are the same whatever device a trial trains on and cost nothing there.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .build import network_from_config
from .network import LocalNetwork

# the network's figures a study may log or optimise (besides what training measures)
COST_METRICS = ("aux_flops", "aux_params", "backbone_flops", "backbone_params", "train_flops_per_example")


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_flops(fn, *args) -> int:
    """Forward FLOPs of fn(*args) as torch.utils.flop_counter counts them (2 per MAC)."""
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


@torch.no_grad()
def describe_network(net: LocalNetwork) -> dict:
    """A JSON-ready description: the plan, each local layer's auxiliary net, totals. The
    probe input lives where the network does (the meta device is the cheapest)."""
    backbone = net.backbone
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()  # BatchNorm1d cannot run in training mode on one example
    try:
        x = torch.zeros(1, backbone.in_channels, backbone.image_size, backbone.image_size, device=device)
        y = torch.zeros(1, dtype=torch.long, device=device)
        layer_inputs = [x]
        for layer in backbone.layers:
            layer_inputs.append(layer(layer_inputs[-1]))
        local = []
        for entry, head in zip(net.plan.local, net.aux_heads):
            h = layer_inputs[entry.layer + 1]
            image = x.clamp(0, 1) if head.needs_image else None
            local.append({
                "layer": entry.layer,
                "aux_depth": entry.aux_depth,
                "aux_layers": list(entry.aux_layers),
                "aux_params": count_params(head),
                "aux_flops": count_flops(head, h, y, image),
            })
        backbone_flops = count_flops(backbone, x)
    finally:
        net.train(was_training)
    aux_params = sum(e["aux_params"] for e in local)
    aux_flops = sum(e["aux_flops"] for e in local)
    backbone_params = count_params(backbone)
    description = {
        "model": backbone.name,
        "num_layers": len(backbone.layers),
        "head_layers": list(net.plan.head_layers),
        "local_layers": local,
        "input": [backbone.in_channels, backbone.image_size, backbone.image_size],
        "num_classes": backbone.num_classes,
        "backbone_params": backbone_params,
        "backbone_flops": backbone_flops,
        "aux_params": aux_params,
        "aux_flops": aux_flops,
        "aux_params_ratio": aux_params / backbone_params,
        "aux_flops_ratio": aux_flops / backbone_flops,
    }
    description["train_flops_per_example"] = training_flops(description)
    return description


def network_cost(config, info) -> dict:
    """`describe_network` of the network a TrainConfig trains on data described by a
    DataInfo, built on the meta device."""
    with torch.device("meta"):
        return describe_network(network_from_config(config, info))


def training_flops(description: dict) -> int:
    """Training FLOPs per example: forward plus a backward of twice the forward, over the
    backbone and every auxiliary net (the usual 3x rule)."""
    return 3 * (description["backbone_flops"] + description["aux_flops"])
