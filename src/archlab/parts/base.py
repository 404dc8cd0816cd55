"""The two interfaces a kind of layer part implements, and the counting helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from ..model_config import LayerSpec, ModelConfig, NormConfig


def linear(i: int, o: int, bias: bool = False) -> int:
    """Parameters of an i -> o linear layer."""
    return i * o + (o if bias else 0)


def norm_params(n: NormConfig, dim: int) -> int:
    if n.kind == "l2norm":
        return 0
    return dim * (2 if n.bias else 1)


def fmt_tokens(n: int) -> str:
    """Token counts as context lengths are named: 8K = 8192, 1M = 1048576; others exact."""
    if n >= 1024**2 and n % 1024**2 == 0:
        return f"{n // 1024**2}M"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}K"
    return f"{n:,}"


def visible(spec: LayerSpec, context: int) -> int:
    """Keys a query at position `context` (1-based) attends to in this layer."""
    if spec.window is not None:
        return min(context, spec.window)
    if spec.chunk is not None:
        return (context - 1) % spec.chunk + 1
    return context


@dataclass(frozen=True)
class Part:
    """One part in words (`text`), in fewer words for one-line-per-model tables (`short`),
    and as data for JSON."""

    text: str
    data: dict[str, Any] = field(default_factory=dict)
    brief: str | None = None

    @property
    def short(self) -> str:
        return self.text if self.brief is None else self.brief


class _Kind:
    name: str = ""
    # "package.module:Class" of the nn.Module that computes this kind, imported only to build
    module: str = ""

    def module_class(self) -> type:
        path, cls = self.module.split(":")
        return getattr(import_module(path), cls)


class MixerKind(_Kind):
    """A token mixer: softmax attention, MLA, linear attention."""

    # one letter per layer in `archlab inspect`'s layer map
    legend: dict[str, str] = {}

    def used(self, cfg: ModelConfig) -> bool:
        return any(s.mixer == self.name for s in cfg.layers)

    def params(self, cfg: ModelConfig) -> int:
        raise NotImplementedError

    def flops(self, cfg: ModelConfig, spec: LayerSpec, context: int) -> int:
        """Forward FLOPs of one token that sees `context` tokens, 2 per multiply-add."""
        raise NotImplementedError

    def cache_bytes(self, cfg: ModelConfig, spec: LayerSpec, tokens: int, dtype_bytes: int) -> int:
        """What this layer's cache holds for one sequence of `tokens` tokens."""
        raise NotImplementedError

    def cache_words(self, cfg: ModelConfig) -> str:
        """What one token leaves in the cache ("K,V 8 x 128")."""
        raise NotImplementedError

    def label(self, cfg: ModelConfig) -> str:
        """The mixer's name in a layer's description ("attention", "MLA")."""
        raise NotImplementedError

    def span(self, spec: LayerSpec) -> str:
        """Which tokens a layer sees: "global", "sliding(512)", ..."""
        return "global"

    def letter(self, spec: LayerSpec) -> str:
        raise NotImplementedError

    def plan_kind(self, spec: LayerSpec) -> str:
        """The layer's kind in plots of the plan (the report's layer map colours by it)."""
        return spec.kind

    def describe(self, cfg: ModelConfig) -> Part:
        raise NotImplementedError

    def tiny(self, cfg: ModelConfig, d_model: int, n_heads: int, short: int) -> dict[str, Any]:
        """ModelConfig fields of a small version with the same shape of part."""
        raise NotImplementedError


class FFNKind(_Kind):
    """A feed-forward part: dense, or a mixture of experts."""

    def params(self, cfg: ModelConfig) -> tuple[int, int]:
        """(total, active per token)."""
        raise NotImplementedError

    def flops(self, cfg: ModelConfig) -> int:
        raise NotImplementedError

    def describe(self, cfg: ModelConfig) -> Part:
        raise NotImplementedError

    def tiny(self, cfg: ModelConfig, d_model: int) -> dict[str, Any]:
        raise NotImplementedError

    def build(self, cfg: ModelConfig):
        raise NotImplementedError
