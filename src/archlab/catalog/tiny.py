"""Shrink any preset to a few-million-parameter model that keeps its architecture.

What is kept: every kind of part (norm kind, position kind and RoPE scaling, attention
kind and its MHA/GQA/MQA shape, MLA with or without query compression, FFN kind and
activation, MoE router semantics, shared experts, groups) and every kind of layer in the
per-layer plan. What shrinks: widths, the number of layers (a prefix long enough to hold
each kind of layer), the number of experts, the vocabulary and the context. Each kind of
mixer and FFN knows its own small version (parts/); this module only loops over them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..model_config import (MAX_COUNT, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH, ConfigError, ModelConfig,
                            PerLayer, RopeConfig, shown)
from ..parts import FFNS, MIXERS


def _layers_to_keep(cfg: ModelConfig) -> int:
    """The shortest prefix of layers that contains every (kind, ffn, NoPE) combination, at least 2."""
    plan = [(s.kind, s.ffn, s.rope is None) for s in cfg.layers]
    kinds = set(plan)
    seen: set = set()
    for i, k in enumerate(plan):
        seen.add(k)
        if seen == kinds:
            return min(cfg.n_layers, max(2, i + 1))
    return cfg.n_layers


def _cut(rule: PerLayer, keep: int) -> PerLayer:
    """A per-layer rule for the first `keep` layers: a Pattern re-derives itself at any depth."""
    return rule[:keep] if isinstance(rule, tuple) else rule


def _shrink_rope(rope: RopeConfig | None, max_seq_len: int) -> RopeConfig | None:
    if rope is None or rope.scaling is None:
        return rope
    # Shrink the pre-training context with the model so the scaling still acts within max_seq_len.
    return replace(rope, scaling=replace(rope.scaling, original_max_seq_len=max(16, max_seq_len // 4)))


def tiny(
    config: ModelConfig,
    *,
    d_model: int = 64,
    n_heads: int = 4,
    vocab_size: int = 512,
    max_seq_len: int = 256,
    n_layers: int | None = None,
    **overrides: Any,
) -> ModelConfig:
    """A small config with the same architecture as `config`. Keyword overrides win."""
    # checked before the parts scale their widths by them: `archlab train --tiny --d-model 1e400`
    # ended in an OverflowError inside the FFN's arithmetic
    for name, value, most in (("d_model", d_model, MAX_WIDTH), ("n_heads", n_heads, MAX_COUNT),
                              ("vocab_size", vocab_size, MAX_VOCAB), ("max_seq_len", max_seq_len, MAX_POSITIONS),
                              ("n_layers", 1 if n_layers is None else n_layers, MAX_LAYERS)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
            raise ConfigError(f"tiny {name}: expected an integer in [1, {most:,}], got {shown(value)}")
    keep = n_layers if n_layers is not None else _layers_to_keep(config)
    short = max(8, max_seq_len // 8)  # windows and chunks shorter than a test sequence
    fields: dict[str, Any] = {}
    # every mixer kind the config has a part for (the attention of an all-linear stack too)
    mixers = {MIXERS[config.attention.kind]} | {MIXERS[s.mixer] for s in config.layers}
    for kind in mixers:
        fields.update(kind.tiny(config, d_model, n_heads, short))
    if config.ffn is not None:
        fields.update(FFNS["dense"].tiny(config, d_model))
    if config.moe is not None:
        fields.update(FFNS["moe"].tiny(config, d_model))
    position = config.position
    fields.update(
        name=f"{config.name}-tiny" if config.name else "tiny",
        vocab_size=vocab_size,
        d_model=d_model,
        n_layers=keep,
        max_seq_len=max_seq_len,
        position=_shrink_rope(position, max_seq_len) if isinstance(position, RopeConfig) else position,
        rope_local=_shrink_rope(config.rope_local, max_seq_len),
        layer_types=_cut(config.layer_types, keep),
        ffn_types=_cut(config.ffn_types, keep),
        rope_layers=_cut(config.rope_layers, keep),
    )
    fields.update(overrides)
    return config.replace(**fields)
