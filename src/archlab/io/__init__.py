"""Weights in and out: each file format's names and layouts translated to ours at the edge."""

from ..errors import CheckpointError  # importing io must not import torch (reports write through io.atomic)

__all__ = ["CheckpointError"]
