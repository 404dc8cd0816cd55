"""Weights in and out: each file format's names and layouts translated to ours at the edge."""

from .safetensors_dir import CheckpointError

__all__ = ["CheckpointError"]
