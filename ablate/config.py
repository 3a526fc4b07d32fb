"""Every setting of one training run, with its default and its validation, in one place.

The same names are `ablate train` options (with dashes) and study keys (with
underscores), so a study cell is exactly a TrainConfig. The rules, datasets and backbones
a setting may name are those of their registries.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .data import DATASETS, digits
from .devices import device_syntax_problem
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


# torch.manual_seed takes a signed 64-bit seed (negative ones too); ablate's seeds are >= 0
MAX_SEED = 2**63 - 1
# parameters grow with the square of the width: width 16 makes resnet20 69M parameters
# (from 0.27M), and a width of 1e6 could never be held in memory
MAX_WIDTH = 16.0


class TrainConfig(BaseModel):
    # allow_inf_nan=False: every number is finite (.inf and .nan are refused where given)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # network and learning rule
    model: Literal[BACKBONES.names()] = "resnet20"
    width: float = Field(1.0, gt=0, le=MAX_WIDTH, description="channel multiplier of the backbone")
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
    split_seed: int = Field(0, ge=0, le=MAX_SEED)
    train_subset: int | None = Field(None, ge=1, description="train on the first K examples only")
    augment: bool = True
    num_workers: int = Field(2, ge=0, description="DataLoader workers (ImageFolder only)")

    # optimisation
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(1e-4, ge=0, lt=1)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: int = Field(0, ge=0, description="the paper uses 10")
    milestones: tuple[int, ...] = ()
    gamma: float = Field(0.1, gt=0, le=1)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    eval_batch_size: int = Field(1024, ge=1)
    seed: int = Field(0, ge=0, le=MAX_SEED)

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

    @field_validator("device")
    @classmethod
    def _device_is_a_device(cls, device: str) -> str:
        """The syntax only; whether this machine has it is `devices.device_problem`."""
        problem = device_syntax_problem(device)
        if problem is not None:
            raise ValueError(problem)
        return device

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self):
        if self.optimizer == "sgd" and self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0; set momentum or nesterov: false")
        return self

    @model_validator(mode="after")
    def _schedule_fits_epochs(self):
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs {self.warmup_epochs} must be below epochs {self.epochs}; "
                             "lower warmup_epochs or raise epochs")
        previous = 0
        for milestone in self.milestones:
            if not previous < milestone < self.epochs:
                raise ValueError(f"milestones {list(self.milestones)} must increase from 1 and stay below epochs "
                                 f"{self.epochs}; e.g. milestones [{max(1, self.epochs // 2)}]")
            previous = milestone
        return self

    def flat(self) -> dict:
        """Settings as flat JSON-ready values (for logging and run parameters)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.model_dump().items()}


def what_is_trained(flat: dict) -> dict:
    """The settings of a flat config that decide what is trained (EXECUTION_ONLY left out)."""
    return {k: v for k, v in flat.items() if k not in EXECUTION_ONLY}
