"""What a network costs, layer by layer: parameters and forward FLOPs of every auxiliary
net, counted by torch's own FLOP counter for one example, against the backbone."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .engine import LocalNetwork


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_flops(fn, *args) -> int:
    """Forward FLOPs of fn(*args) as torch.utils.flop_counter counts them (2 per MAC)."""
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


@torch.no_grad()
def describe_network(net: LocalNetwork) -> dict:
    """A JSON-ready description: the plan, each local layer's auxiliary net, totals."""
    backbone = net.backbone
    was_training = net.training
    net.eval()  # BatchNorm1d cannot run in training mode on one example
    try:
        x = torch.zeros(1, backbone.in_channels, backbone.image_size, backbone.image_size)
        y = torch.zeros(1, dtype=torch.long)
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
    return {
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


def training_flops(description: dict) -> int:
    """Training FLOPs per example: forward plus a backward of twice the forward, over the
    backbone and every auxiliary net (the usual 3x rule)."""
    return 3 * (description["backbone_flops"] + description["aux_flops"])


def _human(n: float) -> str:
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}P"


def render_description(d: dict, rule: str) -> str:
    lines = [
        f"{d['model']} · rule {rule} · {d['num_layers']} layers · input "
        f"{'×'.join(map(str, d['input']))} · {d['num_classes']} classes",
        f"local layers: {len(d['local_layers'])} · end-to-end head group: layers "
        + (f"{d['head_layers'][0]}..{d['head_layers'][-1]}" if d["head_layers"] else "none"),
        "",
        f"{'layer':>5}  {'depth':>5}  {'aux layers':<24}  {'aux params':>10}  {'aux FLOPs':>10}",
    ]
    for e in d["local_layers"]:
        copies = ",".join(map(str, e["aux_layers"])) or "(fixed head)"
        lines.append(f"{e['layer']:>5}  {e['aux_depth']:>5}  {copies:<24}  "
                     f"{_human(e['aux_params']):>10}  {_human(e['aux_flops']):>10}")
    lines += [
        "",
        f"backbone:  {_human(d['backbone_params'])} params, {_human(d['backbone_flops'])} FLOPs/example",
        f"aux total: {_human(d['aux_params'])} params ({d['aux_params_ratio']:.2f}× backbone), "
        f"{_human(d['aux_flops'])} FLOPs/example ({d['aux_flops_ratio']:.2f}× backbone)",
    ]
    return "\n".join(lines)
