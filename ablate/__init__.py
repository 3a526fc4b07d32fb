"""ablate: ablation studies of supervised local learning."""

__version__ = "0.1.0"
