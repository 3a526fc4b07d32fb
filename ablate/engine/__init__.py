"""The torch-only core: a network with its gradient-isolated step, how it is built from
settings, and the Trainer that trains it (checkpoints, schedule, memory, compile, cost).
Imports neither optuna nor mlflow, so it runs on a machine that has only torch; the
Trainer (which takes a pydantic TrainConfig) is imported on first use, so the network,
its step and the epoch loop need no pydantic either (the GPU benchmark runs on them).

    net = build_network(model="resnet32", rule="auglocal", aux_depth=3, ...)
    result = Trainer(TrainConfig(model="resnet20", epochs=5)).fit()

Modules, one idea each:
    network      LocalNetwork and its training step (the why of every line)
    build        settings -> backbone + plan + auxiliary nets
    trainer      the Trainer: epochs, evaluation, accounting, callbacks
    loop         one training epoch: the step, running totals, the memory meter
    checkpoints  per-epoch checkpoints, written atomically, and resuming from them
    schedule     learning-rate schedules
    memory       peak memory, measured the same way everywhere
    compiling    torch.compile of the step's units
    cost         parameters and FLOPs of a network, device-agnostic
    stopping     Ctrl-C (and SIGTERM) made safe for a training loop
"""

from .build import build_network, network_from_config
from .cost import COST_METRICS, describe_network, network_cost, training_flops
from .network import LocalNetwork, StepOutput

_TRAINER_NAMES = ("Callback", "Trainer", "build_optimizer", "select_device")

__all__ = ["COST_METRICS", "Callback", "LocalNetwork", "StepOutput", "Trainer", "build_network",
           "build_optimizer", "describe_network", "network_cost", "network_from_config", "select_device",
           "training_flops"]


def __getattr__(name: str):
    if name in _TRAINER_NAMES:
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
