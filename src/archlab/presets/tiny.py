"""Shrink any preset to a few-million-parameter model that keeps its architecture.

What is kept: every kind of part (norm kind, position kind and RoPE scaling, attention
kind and its MHA/GQA/MQA shape, MLA with or without query compression, FFN kind and
activation, MoE router semantics, shared experts, groups) and every kind of layer in the
per-layer plan. What shrinks: widths, the number of layers (a prefix long enough to hold
each kind of layer), the number of experts, the vocabulary and the context.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from ..config import AttentionConfig, AttnTemperature, LengthTemperature, MLAConfig, ModelConfig, MoEConfig, RopeConfig


def _layers_to_keep(cfg: ModelConfig) -> int:
    """The shortest prefix of layers that contains every (mixer, ffn, rope) kind, at least 2."""
    plan = list(zip(cfg.layer_types, cfg.ffn_types, cfg.rope_layers))
    kinds = set(plan)
    seen: set = set()
    for i, k in enumerate(plan):
        seen.add(k)
        if seen == kinds:
            return min(cfg.n_layers, max(2, i + 1))
    return cfg.n_layers


def _tiny_temperature(t: AttnTemperature | LengthTemperature | None, short: int):
    # lengths where the temperature starts to act, brought within a test sequence
    if isinstance(t, AttnTemperature):
        return replace(t, floor_scale=float(short))
    if isinstance(t, LengthTemperature):
        return replace(t, length=short)
    return t


def _tiny_moe(moe: MoEConfig, d_model: int, scale: float) -> MoEConfig:
    r = moe.router
    top_k = min(moe.top_k, 2)
    n_groups = min(r.n_groups, 4)
    # Enough experts that routing is a real choice: more than top_k, and a multiple of the groups.
    n_experts = max(min(moe.n_experts, 8), top_k + 1)
    per_group = max(-(-n_experts // n_groups), 2 if r.group_score == "top2_sum" and n_groups > 1 else 1)
    n_experts = per_group * n_groups
    topk_groups = min(r.topk_groups, n_groups)
    if n_groups > 1:
        # keep routing group-limited (fewer groups survive than exist) yet able to fill top_k
        topk_groups = max(min(topk_groups, n_groups - 1), -(-top_k // per_group))
    return replace(
        moe,
        n_experts=n_experts,
        top_k=top_k,
        hidden=max(8, int(moe.hidden * scale) // 8 * 8),
        router=replace(r, n_groups=n_groups, topk_groups=topk_groups),
    )


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
    scale = d_model / config.d_model
    keep = n_layers if n_layers is not None else _layers_to_keep(config)
    a = config.attention
    if isinstance(a, MLAConfig):
        attention: AttentionConfig | MLAConfig = replace(
            a,
            n_heads=n_heads,
            kv_lora_rank=32,
            q_lora_rank=None if a.q_lora_rank is None else 48,
            qk_nope_head_dim=16,
            qk_rope_head_dim=8,
            v_head_dim=16,
        )
    else:
        kv = a.n_kv_heads
        # keep the attention's shape: MHA stays MHA, MQA stays MQA, GQA stays grouped
        kv_tiny = n_heads if kv == a.n_heads else 1 if kv == 1 else max(2, n_heads // 2)
        short = max(8, max_seq_len // 8)  # windows and chunks shorter than a test sequence
        attention = replace(
            a,
            n_heads=n_heads,
            n_kv_heads=kv_tiny,
            head_dim=d_model // n_heads,
            window=None if a.window is None else min(a.window, short),
            chunk=None if a.chunk is None else min(a.chunk, short),
            temperature=_tiny_temperature(a.temperature, short),
        )
    ffn = replace(config.ffn, hidden=max(8, int(config.ffn.hidden * scale) // 8 * 8))
    moe = None if config.moe is None else _tiny_moe(config.moe, d_model, scale)
    def shrink(rope: RopeConfig | None) -> RopeConfig | None:
        if rope is None or rope.scaling is None:
            return rope
        # Shrink the pre-training context with the model so the scaling still acts within max_seq_len.
        return replace(rope, scaling=replace(rope.scaling, original_max_seq_len=max(16, max_seq_len // 4)))

    lin = config.linear_attention
    if lin is not None:
        lin = replace(lin, n_k_heads=2, n_v_heads=2 * (lin.n_v_heads // lin.n_k_heads), k_head_dim=16, v_head_dim=16)
    embed_scale = config.embed_scale
    if embed_scale is not None and math.isclose(embed_scale, math.sqrt(config.d_model), rel_tol=1e-6):
        embed_scale = math.sqrt(d_model)  # Gemma and Grok scale embeddings by sqrt(d_model)
    fields = dict(
        name=f"{config.name}-tiny" if config.name else "tiny",
        embed_scale=embed_scale,
        vocab_size=vocab_size,
        d_model=d_model,
        n_layers=keep,
        max_seq_len=max_seq_len,
        attention=attention,
        ffn=ffn,
        moe=moe,
        rope=shrink(config.rope),
        rope_local=shrink(config.rope_local),
        linear_attention=lin,
        layer_types=config.layer_types[:keep],
        ffn_types=config.ffn_types[:keep],
        rope_layers=config.rope_layers[:keep],
    )
    fields.update(overrides)
    return replace(config, **fields)
