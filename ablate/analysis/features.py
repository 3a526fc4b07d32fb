"""Every layer's output of a trained network on a fixed, ordered, un-augmented sample set.

The representations of a network are the outputs of its layers in order, then its logits
("output"): ResNet-32 has 16 layers and 17 representations. A conv layer's (n, C, H, W)
output becomes a vector per example by an explicit reduction, recorded with every number:

    gap      global average pool → C features
    poolS    adaptive average pool to S × S → C·S·S features (pool1 = gap)
    flatten  all C·H·W features (what the CKA papers compare)

The network runs in eval mode (batch norm uses its running statistics) and in float32;
similarity casts to float64 itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import TrainConfig
from ..data import DataBundle, Loader, load_data
from ..spec.analysis import check_reduction


@dataclass(frozen=True)
class Samples:
    """n examples in a fixed order: normalised images (n, C, H, W) and labels, on the CPU."""

    images: torch.Tensor
    labels: torch.Tensor
    split: str  # "train", "val" or "test"

    def __len__(self) -> int:
        return len(self.labels)


def analysis_data(config: TrainConfig) -> DataBundle:
    """The trial's dataset, split and subset as it trained on them, without augmentation.
    The training loader's order is seeded with 0, not the trial's seed, so every network
    of a study is probed on the same training examples."""
    return load_data(config.dataset, root=config.data_root, download=False, val_size=config.val_size,
                     split_seed=config.split_seed, train_subset=config.train_subset, device="cpu",
                     augment=False, num_workers=config.num_workers, batch_size=config.eval_batch_size, seed=0)


def take(loader: Loader | None, count: int | None, split: str) -> Samples:
    """The first `count` examples a loader yields (all of them when None)."""
    if loader is None:
        return Samples(torch.zeros(0), torch.zeros(0, dtype=torch.long), split)
    loader.set_epoch(0)
    images, labels, held = [], [], 0
    for x, y in loader:
        images.append(x.cpu())
        labels.append(y.cpu())
        held += len(y)
        if count is not None and held >= count:
            break
    images, labels = torch.cat(images), torch.cat(labels)
    return Samples(images[:count], labels[:count], split)


def reduce(output: torch.Tensor, reduction: str) -> torch.Tensor:
    """(n, C, H, W) → (n, features) as `reduction` says; (n, features) stays as it is."""
    if output.ndim == 2:
        return output
    if reduction == "gap":
        return output.mean(dim=(2, 3))
    if reduction == "flatten":
        return output.flatten(1)
    size = int(check_reduction(reduction)[len("pool"):])
    return F.adaptive_avg_pool2d(output, size).flatten(1)


def representation_names(net) -> list[str]:
    return [f"layer {i}" for i in range(len(net.backbone.layers))] + ["output"]


@torch.no_grad()
def feature_batches(net, images: torch.Tensor, reduction: str, batch_size: int,
                    device: torch.device | str = "cpu") -> Iterator[list[torch.Tensor]]:
    """For each consecutive batch of `images`, every representation's reduced features."""
    check_reduction(reduction)
    was_training = net.training
    net.eval()
    try:
        for start in range(0, len(images), batch_size):
            outputs = net.layer_outputs(images[start:start + batch_size].to(device))
            yield [reduce(output, reduction).float() for output in outputs]
    finally:
        net.train(was_training)


def extract(net, images: torch.Tensor, reduction: str, batch_size: int,
            device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """Every representation's reduced features of all `images`, (n, features) each, on the CPU."""
    per_batch = [[f.cpu() for f in batch] for batch in feature_batches(net, images, reduction, batch_size, device)]
    return [torch.cat(layer) for layer in zip(*per_batch)]

