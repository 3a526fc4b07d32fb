"""The golden training step: what every rule computes on fixed seeds, recorded once so that
moving or speeding up engine code provably changes nothing.

Two recordings per case, both on the CPU with one thread:
- `step`: a network built from fixed settings takes STEPS steps of SGD (Nesterov) on fixed
  batches; per step the output loss, the local losses, the correct counts and, after the
  first step, every gradient; after the last step every parameter and buffer.
- `trainer`: the Trainer trains TRAINER_EPOCHS epochs on a digits subset (loader,
  augmentation, schedule and evaluation included): every per-epoch metric that is not a
  time or a memory figure, and the final state dict.

A tensor is kept as its fingerprint: the SHA-256 of its bytes (equal only if every bit
is), its shape, and its sum and norm in float64 (for machines whose kernels round
differently). Scalars are kept as exact floats. `python -m tests.golden` writes
tests/golden_step.json from the code as it is; do that only when a change of the numbers
is intended, and say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import torch

from ablate.config import TrainConfig
from ablate.engine import Trainer, build_network, build_optimizer

GOLDEN_FILE = Path(__file__).with_name("golden_step.json")
STEPS = 3
BATCH = 16
TRAINER_EPOCHS = 2
# every rule, AugLocal with each selection strategy and decay that changes its nets, and
# the bf16 path (autocast on the CPU)
CASES = {
    "bp": dict(rule="bp"),
    "auglocal": dict(rule="auglocal", aux_depth=2, selection="uniform", decay="linear"),
    "auglocal-sequential-exponential": dict(rule="auglocal", aux_depth=3, selection="sequential",
                                            decay="exponential", decay_coeff=1.0),
    "auglocal-repetitive-step": dict(rule="auglocal", aux_depth=3, selection="repetitive", decay="step"),
    "auglocal-random": dict(rule="auglocal", aux_depth=2, selection="random", decay="constant", seed=3),
    "dgl": dict(rule="dgl"),
    "infopro": dict(rule="infopro"),
    "predsim": dict(rule="predsim"),
    "auglocal-bf16": dict(rule="auglocal", aux_depth=2, bf16=True),
}
BASE = dict(model="resnet20", width=0.25, dataset="digits", batch_size=BATCH, lr=0.05, epochs=TRAINER_EPOCHS,
            train_subset=256, val_size=64, eval_batch_size=128, device="cpu")


def machine() -> dict:
    """What the numbers depend on besides the code: exact equality holds on the same
    torch build and CPU kernels; elsewhere the comparison allows float rounding."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine()}


def fingerprint(tensor: torch.Tensor) -> dict:
    tensor = tensor.detach().cpu().contiguous()
    as_float = tensor.double()
    return {"shape": list(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch."),
            "sha256": hashlib.sha256(tensor.numpy().tobytes()).hexdigest(),
            "sum": float(as_float.sum()), "norm": float(as_float.norm())}


def _state(module: torch.nn.Module) -> dict:
    return {name: fingerprint(value) for name, value in module.state_dict().items()}


def config(case: str) -> TrainConfig:
    return TrainConfig(**{**BASE, **CASES[case]})


def _batches(steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1234)
    return [(torch.randn(BATCH, 1, 8, 8, generator=generator), torch.randint(0, 10, (BATCH,), generator=generator))
            for _ in range(steps)]


def record_step(case: str, **changes) -> dict:
    cfg = config(case).model_copy(update=changes)
    torch.manual_seed(cfg.seed)
    net = build_network(model=cfg.model, rule=cfg.rule, aux_depth=cfg.aux_depth, selection=cfg.selection,
                        decay=cfg.decay, decay_coeff=cfg.decay_coeff, head_layers=cfg.head_layers, seed=cfg.seed,
                        width=cfg.width, in_channels=1, num_classes=10, image_size=8)
    optimizer = build_optimizer(cfg, net)
    net.set_autocast(torch.bfloat16 if cfg.bf16 else None)
    steps, gradients = [], None
    for index, (x, y) in enumerate(_batches(STEPS)):
        optimizer.zero_grad(set_to_none=True)
        out = net.train_step(x, y)
        if index == 0:
            gradients = {name: fingerprint(p.grad) for name, p in net.named_parameters() if p.grad is not None}
        optimizer.step()
        steps.append({"loss": float(out.loss), "correct": float(out.correct),
                      "aux_loss": [float(v) for v in out.aux_loss], "aux_correct": [float(v) for v in out.aux_correct]})
    return {"steps": steps, "gradients": gradients, "state": _state(net)}


NOT_COMPARED = {"epoch_time_s", "examples_per_s", "peak_memory_bytes", "peak_saved_bytes", "peak_rss_bytes"}


def record_trainer(case: str) -> dict:
    trainer = Trainer(config(case))
    result = trainer.fit()
    history = [{k: v for k, v in m.items() if k not in NOT_COMPARED} for m in result["history"]]
    return {"history": history, "state": _state(trainer.net)}


def record_all() -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {"machine": machine(),
                "cases": {case: {"step": record_step(case), "trainer": record_trainer(case)} for case in CASES}}
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    GOLDEN_FILE.write_text(json.dumps(record_all()) + "\n")
    print(f"wrote {GOLDEN_FILE} ({GOLDEN_FILE.stat().st_size / 1024:.0f} KiB) on {machine()}")
