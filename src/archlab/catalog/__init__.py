"""Presets: published architectures as `ModelConfig` factories, one module per family.

Names are exact; a miss suggests the closest ones. Every preset cites where its
numbers come from in `ModelConfig.source`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from ..model_config import ConfigError, ModelConfig

# How a published active-parameter figure counts the embeddings:
#   "all"           every parameter a token uses, input embedding row and output head included
#   "no_embedding"  the input embedding table left out (it is a lookup, not compute)
#   "no_embeddings" the input embedding and the output head both left out
ACTIVE_CONVENTIONS = ("all", "no_embedding", "no_embeddings")


_UNITS = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def parse_figure(figure: str) -> tuple[float, float]:
    """A published size as written ("671B", "2.4B", "124M") -> (value, relative tolerance).
    The tolerance is 2%, or half a unit of the last written digit when that is coarser: "2.4B"
    covers 2.35B..2.45B, so a count of 2.45B agrees with it."""
    text = figure.strip()
    if not text or text[-1] not in _UNITS:
        raise ValueError(f"published figure {figure!r}: expected a number with a unit K, M, B or T, e.g. '2.4B'")
    number, unit = text[:-1], _UNITS[text[-1]]
    try:
        value = float(number) * unit
    except ValueError:
        raise ValueError(f"published figure {figure!r}: {number!r} is not a number") from None
    decimals = len(number.split(".")[1]) if "." in number else 0
    half_unit = 0.5 * 10**-decimals * unit
    return value, max(0.02, half_unit / value)


@dataclass(frozen=True)
class Published:
    """What a model's authors say its size is, as they wrote it, and where.

    total: all parameters ("671B"), in the convention of the source (say in `note` what it
    leaves out, e.g. multi-token-prediction layers). active: parameters used per token ("37B")
    for MoE models, counted as `active_convention` says; None for dense models."""

    total: str
    source: str
    active: str | None = None
    active_convention: str = "all"
    note: str = ""
    # A wider tolerance for the active figure than parse_figure's, only with a note saying why.
    active_tolerance: float | None = None
    # False when the authors published no size and the figure is someone else's (the source says whose).
    by_authors: bool = True

    def __post_init__(self) -> None:
        if self.active_convention not in ACTIVE_CONVENTIONS:
            raise ValueError(f"active_convention: expected one of {ACTIVE_CONVENTIONS}, got {self.active_convention!r}")
        parse_figure(self.total)
        if self.active is not None:
            parse_figure(self.active)
        if self.active_tolerance is not None and not self.note:
            raise ValueError("active_tolerance: a wider tolerance needs a note saying why")
        if not self.by_authors and not self.note:
            raise ValueError("by_authors=False: say in a note why the authors' own figure is missing")

    def total_figure(self) -> tuple[float, float]:
        return parse_figure(self.total)

    def active_figure(self) -> tuple[float, float] | None:
        if self.active is None:
            return None
        value, tol = parse_figure(self.active)
        return value, max(tol, self.active_tolerance or 0.0)


_REGISTRY: dict[str, Callable[[], ModelConfig]] = {}
_PUBLISHED: dict[str, Published] = {}
_UNVERIFIED: set[str] = set()


def preset(
    name: str, published: Published | None = None, verified: bool = True
) -> Callable[[Callable[[], ModelConfig]], Callable[[], ModelConfig]]:
    """Register a factory under an exact name, with the size its authors published.
    verified=False marks an architecture with no reference implementation to prove it against
    (its semantics were read from code we could not run beside ours)."""

    def register(fn: Callable[[], ModelConfig]) -> Callable[[], ModelConfig]:
        if name in _REGISTRY:
            raise RuntimeError(f"preset {name!r} registered twice")
        _REGISTRY[name] = fn
        if published is not None:
            _PUBLISHED[name] = published
        if not verified:
            _UNVERIFIED.add(name)
        return fn

    return register


def verified(name: str) -> bool:
    """False for a preset whose family has no reference implementation to test against."""
    get(name)
    return name not in _UNVERIFIED


def published(name: str) -> Published | None:
    """The published size of a preset, or None when its authors gave none."""
    get(name)  # a clear error for unknown names
    return _PUBLISHED.get(name)


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


def resolve(name_or_config: "str | ModelConfig") -> ModelConfig:
    """The ModelConfig of a preset name, or the config itself."""
    if isinstance(name_or_config, ModelConfig):
        return name_or_config
    if isinstance(name_or_config, str):
        return get(name_or_config)
    raise TypeError(f"expected a preset name or a ModelConfig, got {type(name_or_config).__name__}")


# Importing the family modules registers their presets, in display order.
from . import gpt2, classic, llama, mistral, deepseek, olmo2, gemma3, llama4, qwen3, smollm, kimi, glm, gpt_oss, grok, qwen3_next  # noqa: E402,F401
from . import qwen2, gpt3, palm  # noqa: E402,F401
from .tiny import tiny  # noqa: E402,F401
