"""From settings to a LocalNetwork: backbone, auxiliary plan, auxiliary nets."""

from __future__ import annotations

from ..models import build_backbone
from ..rules import build_aux_heads, plan_for
from .network import LocalNetwork


def build_network(*, model: str, rule: str, aux_depth: int, selection: str, decay: str,
                  decay_coeff: float, head_layers: int | None, seed: int, width: float = 1.0,
                  in_channels: int, num_classes: int, image_size: int,
                  mean: tuple[float, ...] | None = None,
                  std: tuple[float, ...] | None = None) -> LocalNetwork:
    """Raises BackboneError / PlanError / RuleError (all UserInputError) for impossible settings."""
    backbone = build_backbone(model, in_channels=in_channels, num_classes=num_classes,
                              image_size=image_size, width=width)
    plan = plan_for(rule, len(backbone.layers), aux_depth=aux_depth, selection=selection,
                    decay=decay, decay_coeff=decay_coeff, head_layers=head_layers, seed=seed)
    heads = build_aux_heads(rule, backbone, plan)
    return LocalNetwork(backbone, plan, heads,
                        mean=mean or (0.5,) * in_channels, std=std or (0.5,) * in_channels)


def network_from_config(config, info) -> LocalNetwork:
    """The network of a TrainConfig for data described by a DataInfo."""
    return build_network(
        model=config.model, rule=config.rule, aux_depth=config.aux_depth,
        selection=config.selection, decay=config.decay, decay_coeff=config.decay_coeff,
        head_layers=config.head_layers, seed=config.seed, width=config.width,
        in_channels=info.channels, num_classes=info.num_classes, image_size=info.image_size,
        mean=tuple(info.mean), std=tuple(info.std),
    )
