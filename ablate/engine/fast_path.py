"""The execution switches of a run (bf16, channels_last, compile), applied to a network in
one place, for the Trainer and for the benchmarks that time the bare epoch loop."""

from __future__ import annotations

import torch

from .compiling import compile_network
from .network import LocalNetwork


def apply_fast_path(net: LocalNetwork, device: torch.device, *, bf16: bool, channels_last: bool,
                    compile: bool) -> tuple[LocalNetwork, torch.memory_format]:
    """(the network, the memory format its inputs must take): bf16 autocast inside each
    unit's forward, NHWC weights, torch.compile of the step's units (CompileUnavailable
    when this machine cannot compile)."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    net.set_autocast(torch.bfloat16 if bf16 else None)
    if compile:
        compile_network(net, device)
    return net, memory_format
