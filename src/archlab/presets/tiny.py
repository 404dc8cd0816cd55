"""Shrink any preset to a few-million-parameter model that keeps its architecture.

What is kept: every kind of part (norm kind, position kind and RoPE scaling, attention
kind and its MHA/GQA/MQA shape, MLA with or without query compression, FFN kind and
activation, MoE router semantics, shared experts, groups) and every kind of layer in the
per-layer plan. What shrinks: widths, the number of layers (a prefix long enough to hold
each kind of layer), the number of experts, the vocabulary and the context.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..config import AttentionConfig, AttnTemperature, LengthTemperature, MLAConfig, ModelConfig, MoEConfig, PerLayer, RopeConfig


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
        kv = config.resolved_attention.n_kv_heads
        # keep the attention's shape: MHA stays MHA, MQA stays MQA, GQA stays grouped
        kv_tiny = None if a.n_kv_heads is None else n_heads if kv == a.n_heads else 1 if kv == 1 else max(2, n_heads // 2)
        short = max(8, max_seq_len // 8)  # windows and chunks shorter than a test sequence
        attention = replace(
            a,
            n_heads=n_heads,
            n_kv_heads=kv_tiny,
            # an unset head_dim follows the width; a given one (Gemma: 256 != 1152 / 4) shrinks with it
            head_dim=None if a.head_dim is None else d_model // n_heads,
            window=None if a.window is None else min(a.window, short),
            chunk=None if a.chunk is None else min(a.chunk, short),
            temperature=_tiny_temperature(a.temperature, short),
        )
    f = config.ffn
    # a width given as a multiple of d_model (GPT-2's 4x) follows d_model by itself
    ffn = None if f is None or f.hidden is None else replace(f, hidden=max(8, int(f.hidden * scale) // 8 * 8))
    ffn = f if ffn is None else ffn
    moe = None if config.moe is None else _tiny_moe(config.moe, d_model, scale)
    def shrink(rope: RopeConfig | None) -> RopeConfig | None:
        if rope is None or rope.scaling is None:
            return rope
        # Shrink the pre-training context with the model so the scaling still acts within max_seq_len.
        return replace(rope, scaling=replace(rope.scaling, original_max_seq_len=max(16, max_seq_len // 4)))

    lin = config.linear_attention
    if lin is not None:
        lin = replace(lin, n_k_heads=2, n_v_heads=2 * (lin.n_v_heads // lin.n_k_heads), k_head_dim=16, v_head_dim=16)
    fields = dict(
        name=f"{config.name}-tiny" if config.name else "tiny",
        vocab_size=vocab_size,
        d_model=d_model,
        n_layers=keep,
        max_seq_len=max_seq_len,
        attention=attention,
        ffn=ffn,
        moe=moe,
        position=shrink(config.position) if isinstance(config.position, RopeConfig) else config.position,
        rope_local=shrink(config.rope_local),
        linear_attention=lin,
        layer_types=_cut(config.layer_types, keep),
        ffn_types=_cut(config.ffn_types, keep),
        rope_layers=_cut(config.rope_layers, keep),
    )
    fields.update(overrides)
    return config.replace(**fields)
