"""DeepSeek's multi-head latent attention (nn/mla.py): keys and values rebuilt from a latent,
a decoupled RoPE key shared by the heads; the cache holds only [latent | RoPE key]."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..model_config import LayerSpec, ModelConfig
from .base import MixerKind, Part, linear, norm_params, visible


class LatentAttention(MixerKind):
    name = "mla"
    module = "archlab.nn.mla:MLA"
    json_key = "mla"  # its data under this key where another kind leads the description
    legend = {"m": "MLA (global)"}

    def params(self, cfg: ModelConfig) -> int:
        a, d, norm = cfg.attention, cfg.d_model, cfg.norm
        H = a.n_heads
        if a.q_lora_rank is None:
            n = linear(d, H * a.qk_head_dim)
        else:
            n = linear(d, a.q_lora_rank, a.bias) + norm_params(norm, a.q_lora_rank) + linear(a.q_lora_rank, H * a.qk_head_dim)
        n += linear(d, a.kv_lora_rank + a.qk_rope_head_dim, a.bias) + norm_params(norm, a.kv_lora_rank)
        n += linear(a.kv_lora_rank, H * (a.qk_nope_head_dim + a.v_head_dim))
        return n + linear(H * a.v_head_dim, d, a.bias)

    def flops(self, cfg: ModelConfig, spec: LayerSpec, context: int) -> int:
        # counted in the standard, decompressed form (what the absorbed form saves is memory)
        a, d = cfg.attention, cfg.d_model
        H = a.n_heads
        q = d * H * a.qk_head_dim if a.q_lora_rank is None else d * a.q_lora_rank + a.q_lora_rank * H * a.qk_head_dim
        kv = d * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank * H * (a.qk_nope_head_dim + a.v_head_dim)
        return 2 * (q + kv + H * a.v_head_dim * d) + 2 * H * (a.qk_head_dim + a.v_head_dim) * visible(spec, context)

    def cache_bytes(self, cfg: ModelConfig, spec: LayerSpec, tokens: int, dtype_bytes: int) -> int:
        a = cfg.attention
        return (a.kv_lora_rank + a.qk_rope_head_dim) * tokens * dtype_bytes

    def cache_words(self, cfg: ModelConfig) -> str:
        a = cfg.attention
        return f"MLA latent {a.kv_lora_rank} + RoPE key {a.qk_rope_head_dim}"

    def label(self, cfg: ModelConfig) -> str:
        return "MLA"

    def letter(self, spec: LayerSpec) -> str:
        return "m"

    def plan_kind(self, spec: LayerSpec) -> str:
        return "mla"

    def describe(self, cfg: ModelConfig) -> Part:
        a = cfg.attention
        text = f"MLA: {a.n_heads} heads, KV latent {a.kv_lora_rank} + {a.qk_rope_head_dim} RoPE"
        if a.q_lora_rank is not None:
            text += f", Q latent {a.q_lora_rank}"
        data = {
            "kind": "mla", "n_heads": a.n_heads, "kv_lora_rank": a.kv_lora_rank, "q_lora_rank": a.q_lora_rank,
            "qk_nope_head_dim": a.qk_nope_head_dim, "qk_rope_head_dim": a.qk_rope_head_dim, "v_head_dim": a.v_head_dim,
        }
        return Part(text, data, f"MLA r{a.kv_lora_rank}")

    def tiny(self, cfg: ModelConfig, d_model: int, n_heads: int, short: int) -> dict[str, Any]:
        a = cfg.attention
        return {"attention": replace(
            a, n_heads=n_heads, kv_lora_rank=32, q_lora_rank=None if a.q_lora_rank is None else 48,
            qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
        )}


MLA = LatentAttention()
