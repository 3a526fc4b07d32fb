"""Learning-rate schedules, set once per epoch as in the released code (epochs count 1..E)."""

from __future__ import annotations

import math


def cosine_with_warmup(epoch: int, epochs: int, lr0: float, warmup: int) -> float:
    """The released AugLocal code, generalised from its 10 warm-up epochs to W:

        e <= W:  lr = 0.5 * lr0 * (1 + cos(pi * e / E)) * (e - 1) / W + 0.01 * (W + 1 - e) / W
        e >  W:  lr = 0.5 * lr0 * (1 + cos(pi * e / E))

    With W = 10 this is the paper's formula exactly; warm-up starts at 0.01 whatever lr0
    is. As in the released code the last epoch (e = E) runs at lr 0 and only settles
    BatchNorm statistics.
    """
    cosine = 0.5 * lr0 * (1 + math.cos(math.pi * epoch / epochs))
    if epoch <= warmup:
        return cosine * (epoch - 1) / warmup + 0.01 * (warmup + 1 - epoch) / warmup
    return cosine


def step_decay(epoch: int, lr0: float, milestones: tuple[int, ...], gamma: float) -> float:
    """lr = lr0 * gamma ** (number of milestones m with e > m)."""
    return lr0 * gamma ** sum(epoch > m for m in milestones)


def learning_rate(config, epoch: int) -> float:
    if config.schedule == "cosine":
        return cosine_with_warmup(epoch, config.epochs, config.lr, config.warmup_epochs)
    if config.schedule == "step":
        return step_decay(epoch, config.lr, config.milestones, config.gamma)
    return config.lr
