"""Every setting of one training run, with its default and its validation, in one place.

The same names are `ablate train` options (with dashes) and study keys (with
underscores), so a study cell is exactly a TrainConfig. The rules, datasets and backbones
a setting may name are those of their registries.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .data import DATASETS, digits
from .models import BACKBONES
from .plan import SCHEDULES, STRATEGIES
from .rules import AUGLOCAL, RULES

# Settings that say how to run, not what is trained: left out of study cell ids and of
# the check that a checkpoint belongs to the run resuming it, so a run keeps its identity
# on another machine or with these switched. bf16 is not here: it changes the arithmetic.
# channels_last is not either: it was part of cell ids before this set grew, and the ids
# of finished studies must not change.
EXECUTION_ONLY = frozenset({"device", "num_workers", "eval_batch_size", "download", "data_root",
                            "cudnn_benchmark", "compile", "nproc"})


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # network and learning rule
    model: Literal[BACKBONES.names()] = "resnet20"
    width: float = Field(1.0, gt=0, description="channel multiplier of the backbone")
    rule: Literal[RULES.names()] = AUGLOCAL
    aux_depth: int = Field(2, ge=1, description="AugLocal's base auxiliary depth d")
    selection: Literal[STRATEGIES] = "uniform"
    decay: Literal[SCHEDULES] = "linear"
    decay_coeff: float = Field(0.5, ge=0.0, le=1.0, description="decay coefficient tau")
    head_layers: int | None = Field(None, ge=1, description="end-to-end head group size; default: rule's")

    # data
    dataset: Literal[DATASETS.names()] = digits.DATASET.name
    data_root: str | None = None
    download: bool = False
    val_size: float = Field(0.1, ge=0, description="fraction (<1) or count (>=1) held out of train")
    split_seed: int = 0
    train_subset: int | None = Field(None, ge=1, description="train on the first K examples only")
    augment: bool = True
    num_workers: int = Field(2, ge=0, description="DataLoader workers (ImageFolder only)")

    # optimisation
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(1e-4, ge=0)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: int = Field(0, ge=0, description="the paper uses 10")
    milestones: tuple[int, ...] = ()
    gamma: float = Field(0.1, gt=0)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    eval_batch_size: int = Field(1024, ge=1)
    seed: int = 0

    # execution (the GPU fast path: bf16, channels_last, cudnn_benchmark, compile; see README "Performance")
    device: str = "auto"
    bf16: bool = Field(False, description="bfloat16 autocast of each unit's forward (backward follows its dtypes; "
                                          "losses stay float32)")
    channels_last: bool = Field(False, description="NHWC memory format for the network and its inputs")
    cudnn_benchmark: bool = Field(False, description="let cuDNN time its convolution algorithms and keep the "
                                                     "fastest; faster, but not bit-reproducible")
    compile: bool = Field(False, description="torch.compile each local layer with its auxiliary net, and the "
                                             "end-to-end head group")
    nproc: int = Field(1, ge=1, description="processes that train this one run together (torch.distributed: one "
                                            "GPU each, or gloo on the CPU); each takes its slice of every batch")

    @model_validator(mode="after")
    def _a_slice_for_every_process(self):
        if self.batch_size < self.nproc:
            raise ValueError(f"batch_size {self.batch_size} gives some of the {self.nproc} processes no examples; "
                             "raise batch_size or lower nproc")
        return self

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self):
        if self.optimizer == "sgd" and self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0; set momentum or nesterov: false")
        return self

    def flat(self) -> dict:
        """Settings as flat JSON-ready values (for logging and run parameters)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.model_dump().items()}


def what_is_trained(flat: dict) -> dict:
    """The settings of a flat config that decide what is trained (EXECUTION_ONLY left out)."""
    return {k: v for k, v in flat.items() if k not in EXECUTION_ONLY}
