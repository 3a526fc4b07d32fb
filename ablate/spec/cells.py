"""One cell: the config it trains, its id, and whether it can be trained at all.

A factor that a cell's rule ignores, or whose tie fails, is reset to its default, so cells
that differ only there resolve to the same config and the same id."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache

import pydantic
import torch

from ..config import TrainConfig
from ..data import DATASETS, DataError
from ..data.split import validation_count
from ..errors import validation_text
from ..models import BackboneError, build_backbone
from ..plan import COPY_SETTINGS, PlanError
from ..rules import RULES, plan_for
from .settings import EXECUTION_ONLY, SETTINGS, Given, ignored_by, value_or_default
from .yaml_lines import Location, Source, SpecError


@dataclass(frozen=True)
class Trial:
    cell_id: str
    seed: int
    config: TrainConfig  # fully resolved, seed included
    factors: dict  # {key: value} of the study's varied keys that mean something in this cell

    @property
    def key(self) -> str:
        return f"{self.cell_id}-s{self.seed}"


def cell_id(config: TrainConfig) -> str:
    """12 hex digits identifying what a config trains, whatever its seed and machine."""
    meaning = {k: v for k, v in config.flat().items() if k != "seed" and k not in EXECUTION_ONLY}
    canonical = json.dumps(meaning, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


# what the plan is made from: two cells with the same plans (for every seed) and the same
# other settings build the same network from the same seed and train it identically
PLAN_SETTINGS = COPY_SETTINGS + ("head_layers",)


def training_id(config: TrainConfig, seeds: tuple[int, ...]) -> str:
    """12 hex digits identifying what a cell trains as networks: its settings with the
    plan's inputs replaced by the plans they make for `seeds` (the random selection
    draws its plan from the seed). Cells with equal training ids train identically, e.g.
    every depth decay at d = 1."""
    meaning = {k: v for k, v in config.flat().items()
               if k != "seed" and k not in EXECUTION_ONLY and k not in PLAN_SETTINGS}
    meaning["plans"] = [plan_of(config.model_copy(update={"seed": seed})).as_dict() for seed in seeds]
    canonical = json.dumps(meaning, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class CellEntry:
    """One cell of a study as the file lists it; `trained_as` is the cell id whose trials
    it shares (its own id unless an earlier cell trains the same networks)."""

    cell_id: str
    factors: dict
    trained_as: str

    @property
    def alias(self) -> bool:
        return self.trained_as != self.cell_id


def seeded_trial(config: TrainConfig, factors: dict, seed: int, identity: str | None = None) -> Trial:
    """The trial of `config` with `seed`; `identity` is the config's cell id when the caller has it."""
    return Trial(identity or cell_id(config), seed, config.model_copy(update={"seed": seed}), factors)


def plan_of(config: TrainConfig):
    """The auxiliary plan `config` trains with (ablate.plan.AuxPlan)."""
    return plan_for(config.rule, _num_layers(config.model, config.dataset, config.width),
                    aux_depth=config.aux_depth, selection=config.selection, decay=config.decay,
                    decay_coeff=config.decay_coeff, head_layers=config.head_layers, seed=config.seed)


def resolve_cell(source: Source, fixed: dict[str, Given], chosen: dict[str, Given], varied: tuple,
                 ties: dict) -> tuple[TrainConfig, dict]:
    """The config of one cell (seed 0) and its factors, keys without meaning reset to
    defaults; SpecError when the trainer would reject the cell."""
    given = {**fixed, **chosen}
    values = {key: value_or_default(given, key) for key in SETTINGS}
    meaningless = [key for key in SETTINGS if not _meaningful(key, values, ties)]
    meant = {key: g for key, g in given.items() if key not in meaningless}
    try:
        config = TrainConfig(**{key: g.value for key, g in meant.items()})
    except pydantic.ValidationError as err:
        raise _cell_error(source, err.errors()[0], meant) from None
    _check_cell(source, config, given)
    flat = config.flat()
    factors = {key: flat[key] for key in varied if key not in meaningless}
    return config, factors


def _meaningful(key: str, values: dict, ties: dict) -> bool:
    """Whether `key` changes what a cell with these settings trains."""
    ignored = ignored_by(values["rule"])
    if key in ignored:
        return False
    condition = ties.get(key, {})
    return all(other not in ignored and values[other] in allowed for other, allowed in condition.items())


def _cell_error(source: Source, error: dict, given: dict) -> SpecError:
    """A settings combination TrainConfig rejects, blamed on the line that set a key it names."""
    message = validation_text(error)
    named = [key for key in given if re.search(rf"\b{key}\b", message)]
    culprit = given[named[0]] if named else next(iter(given.values()), None)
    path = culprit.path if culprit else ("settings",)
    return source.error(path, message)


def _check_cell(source: Source, config: TrainConfig, given: dict) -> None:
    """Backbone, data split and plan of one cell: what the trainer would reject later."""
    def blame(*keys: str) -> Location:
        return next((given[k].path for k in keys if k in given), ("settings",))

    try:
        num_layers = _num_layers(config.model, config.dataset, config.width)
    except BackboneError as err:
        raise source.error(blame("model", "dataset", "width"), f"{err} (dataset {config.dataset})") from None
    if config.head_layers is not None and RULES[config.rule].local and config.head_layers > num_layers:
        raise source.error(blame("head_layers"), f"head_layers {config.head_layers} is more than the "
                                                 f"{num_layers} layers of {config.model}; choose 1..{num_layers}")
    try:
        plan_of(config)
    except PlanError as err:
        raise source.error(blame("head_layers", "aux_depth", "rule", "model"), str(err)) from None

    dataset = DATASETS[config.dataset]
    train_size = dataset.shape.train_size
    if dataset.needs_root and config.data_root is None:
        raise source.error(blame("dataset"), f"{dataset.name} reads your own folders: set data_root (in settings, "
                                             "or override it when running)")
    if train_size is None:
        return
    # val_size is a fraction below 1 and a count from 1 on (TrainConfig stores both as float)
    val_size = int(config.val_size) if config.val_size >= 1 and config.val_size.is_integer() else config.val_size
    try:
        held_out = validation_count(train_size, val_size)
    except DataError as err:
        raise source.error(blame("val_size"), f"{err} ({config.dataset})") from None
    if config.train_subset is not None and config.train_subset > train_size - held_out:
        raise source.error(blame("train_subset"), f"train_subset {config.train_subset} exceeds the "
                                                  f"{train_size - held_out} training examples of {config.dataset} "
                                                  f"left after holding out {held_out} for validation")


@cache
def _num_layers(model: str, dataset: str, width: float) -> int:
    """Layer count of a backbone, built on the meta device (no memory, no init cost)."""
    shape = DATASETS[dataset].shape
    with torch.device("meta"):
        backbone = build_backbone(model, in_channels=shape.channels, num_classes=shape.num_classes,
                                  image_size=shape.image_size, width=width)
    return len(backbone.layers)
