"""Per-epoch checkpoints of a training run: model, optimiser, history and every random
generator's state, written atomically (a kill mid-write never leaves a torn file), and
the check that a checkpoint belongs to the run that resumes from it."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from ..config import what_is_trained
from ..errors import UserInputError
from ..files import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointMismatch(UserInputError):
    """A checkpoint directory holds a run with other settings."""


class CheckpointUnreadable(UserInputError):
    """A checkpoint file that is cut short, garbled or not ablate's."""


def rng_state(device: torch.device) -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
    }


def restore_rng(state: dict, device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict) -> None:
    """Written through a Python file: a full disk is then an OSError (ENOSPC) naming the
    checkpoint, where torch's own writer gives a RuntimeError that says neither."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as file:
            torch.save(state, file)
    except OSError as err:
        raise OSError(err.errno, err.strerror or os.strerror(err.errno), str(path)) from err


def load_checkpoint(path: Path, device: torch.device, flat_config: dict) -> dict | None:
    """The checkpoint at `path` (None if there is none); CheckpointMismatch when it was
    written by a run that trains something else than `flat_config`."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    # what torch.load raises for a cut-short or garbled file: a zip or pickle it cannot read
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, AttributeError, ImportError) as err:
        raise CheckpointUnreadable(f"{path}: not a readable checkpoint ({' '.join(str(err).split())[:120]}); "
                                   "delete it to train from the start, or choose another checkpoint directory"
                                   ) from None
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise CheckpointUnreadable(f"{path}: not a checkpoint written by ablate; delete it or choose another "
                                   "checkpoint directory")
    if what_is_trained(state["config"]) != what_is_trained(flat_config):
        raise CheckpointMismatch(
            f"{path} holds a run with other settings; delete it or choose another checkpoint directory")
    return state
