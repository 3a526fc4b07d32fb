"""The `compile` setting: torch.compile of the training step's units, after checking that
this machine can compile at all, so a missing compiler is one line, not a traceback from
inside the first step."""

from __future__ import annotations

import torch

from .network import LocalNetwork
from ..errors import UserInputError

BACKEND = "inductor"
# Static shapes: batches have one size (and a last, smaller one), so static graphs need
# no symbolic-shape guards, and layers of different widths never share a dynamic graph.
OPTIONS = {"dynamic": False}


class CompileUnavailable(UserInputError):
    """torch.compile cannot run on this machine."""


def compile_network(net: LocalNetwork, device: torch.device) -> None:
    """Compile the units of `net.train_step` for `device`; CompileUnavailable if it cannot."""
    problem = _compile_problem(device)
    if problem:
        raise CompileUnavailable(f"compile: {problem}, or set compile: false (--no-compile)")
    net.compile_step(backend=BACKEND, **OPTIONS)


def _compile_problem(device: torch.device) -> str | None:
    try:
        torch._dynamo.eval_frame.check_if_dynamo_supported()
    except RuntimeError as err:
        return f"{str(err).rstrip('.')}; use a Python version that torch.compile supports"
    if BACKEND != "inductor":
        return None
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        return None if has_triton() else "inductor needs Triton for CUDA: pip install triton"
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except Exception:  # a private probe: whatever it raises means there is no usable compiler
        return "inductor needs a C++ compiler for CPU code and found none: install g++ or set $CXX"
    return None
