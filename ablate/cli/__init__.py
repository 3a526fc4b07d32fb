"""The `ablate` command, one module per command group:

    describe  a network's auxiliary plan and costs      train   one network
    study     validate / run / status of a study file   report  a study's tables and figures
    analyze   probes and CKA of finished runs           options what the commands share
"""

from .main import cli, main

__all__ = ["cli", "main"]
