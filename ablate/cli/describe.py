"""`ablate describe`: a network's auxiliary plan and what each auxiliary net costs, before
anything trains. Its settings and their defaults are `ablate train`'s."""

from __future__ import annotations

import json

import click
import torch

from ..config import TrainConfig
from ..data import DATASETS
from ..engine import build_network, describe_network
from .options import UserError, config_options, validated

NETWORK_SETTINGS = ("model", "rule", "aux_depth", "selection", "decay", "decay_coeff", "head_layers", "width",
                    "dataset", "seed")


@click.command()
@config_options(NETWORK_SETTINGS, show_default=True)
@click.option("--in-channels", type=int, default=None, help="input channels [default: the dataset's]")
@click.option("--num-classes", type=int, default=None, help="classes [default: the dataset's]")
@click.option("--image-size", type=int, default=None, help="input side length [default: the dataset's]")
@click.option("--json", "as_json", is_flag=True, help="print exactly one JSON object")
def describe(in_channels, num_classes, image_size, as_json, **settings):
    """Show the auxiliary plan of a network: per local layer its depth, the layers its
    auxiliary net copies, and that net's parameters and forward FLOPs. The input is the
    dataset's (known without reading it) unless --in-channels, --num-classes and
    --image-size say otherwise."""
    config = validated(TrainConfig, **settings)
    shape = DATASETS[config.dataset].shape
    given = {"--in-channels": in_channels, "--num-classes": num_classes, "--image-size": image_size}
    for option, value in given.items():
        if value is not None and value < 1:
            raise UserError(f"{option} must be >= 1, got {value}")
    with torch.device("meta"):  # holds no memory and runs no kernels; the counts are the same
        net = build_network(
            model=config.model, rule=config.rule, aux_depth=config.aux_depth, selection=config.selection,
            decay=config.decay, decay_coeff=config.decay_coeff, head_layers=config.head_layers, seed=config.seed,
            width=config.width, in_channels=in_channels or shape.channels,
            num_classes=num_classes or shape.num_classes, image_size=image_size or shape.image_size)
        description = describe_network(net)
    click.echo(json.dumps(description) if as_json else render_description(description, config.rule))


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
