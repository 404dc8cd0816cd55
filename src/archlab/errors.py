"""Errors archlab raises for bad input, importable without torch."""

from .model_config import ConfigError


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: the message names the file, field or tensor."""


__all__ = ["ConfigError", "CheckpointError"]
