"""Presets: published architectures as `ModelConfig` factories, one module per family.

Names are exact; a miss suggests the closest ones. Every preset cites where its
numbers come from in `ModelConfig.source`.
"""

from __future__ import annotations

import difflib
from typing import Callable

from ..config import ConfigError, ModelConfig

_REGISTRY: dict[str, Callable[[], ModelConfig]] = {}


def preset(name: str) -> Callable[[Callable[[], ModelConfig]], Callable[[], ModelConfig]]:
    """Register a factory under an exact name."""

    def register(fn: Callable[[], ModelConfig]) -> Callable[[], ModelConfig]:
        if name in _REGISTRY:
            raise RuntimeError(f"preset {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return register


def names() -> list[str]:
    return list(_REGISTRY)


class UnknownPresetError(ConfigError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def get(name: str) -> ModelConfig:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownPresetError(f"unknown preset {name!r}{hint} (archlab.presets() lists all {len(_REGISTRY)})")
    return _REGISTRY[name]()


# Importing the family modules registers their presets, in display order.
from . import gpt2, llama, deepseek  # noqa: E402,F401
from .tiny import tiny  # noqa: E402,F401
