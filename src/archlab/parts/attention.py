"""Softmax attention over n_kv_heads key/value groups (MHA, GQA, MQA), with sliding windows,
chunks, QK-norm, sinks, softcaps, an output gate and temperatures (nn/attention.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..model_config import AttnTemperature, LayerSpec, LengthTemperature, ModelConfig
from .base import MixerKind, Part, fmt_tokens, linear, norm_params, visible


class Attention(MixerKind):
    name = "attention"
    module = "archlab.nn.attention:Attention"
    json_key = "attention"  # its data under this key where another kind leads the description
    legend = {"g": "global attention", "s": "sliding-window attention", "c": "chunked attention"}

    def params(self, cfg: ModelConfig) -> int:
        a, d = cfg.resolved_attention, cfg.d_model
        H, KV, hd = a.n_heads, a.n_kv_heads, a.head_dim
        q_out = H * hd * (2 if a.output_gate else 1)  # the gate is a second query-sized projection
        n = linear(d, q_out, a.qkv_bias) + 2 * linear(d, KV * hd, a.qkv_bias) + linear(H * hd, d, a.out_bias)
        if a.qk_norm is not None:
            if a.qk_norm_scope == "head":
                n += 2 * norm_params(a.qk_norm, hd)
            else:
                n += norm_params(a.qk_norm, H * hd) + norm_params(a.qk_norm, KV * hd)
        return n + (H if a.sinks else 0)

    def flops(self, cfg: ModelConfig, spec: LayerSpec, context: int) -> int:
        a, d = cfg.resolved_attention, cfg.d_model
        H, KV, hd = a.n_heads, a.n_kv_heads, a.head_dim
        matmuls = 2 * (d * H * hd * (2 if a.output_gate else 1) + 2 * d * KV * hd + H * hd * d)
        return matmuls + 2 * H * 2 * hd * visible(spec, context)  # scores and the weighted sum of values

    def cache_bytes(self, cfg: ModelConfig, spec: LayerSpec, tokens: int, dtype_bytes: int) -> int:
        a = cfg.resolved_attention
        held = min(tokens, spec.window or spec.chunk or tokens)  # a window or chunk is a ring buffer
        return 2 * a.n_kv_heads * a.head_dim * held * dtype_bytes

    def cache_words(self, cfg: ModelConfig) -> str:
        a = cfg.resolved_attention
        return f"K,V {a.n_kv_heads} x {a.head_dim}"

    def label(self, cfg: ModelConfig) -> str:
        return "gated attention" if cfg.attention.output_gate else "attention"

    def span(self, spec: LayerSpec) -> str:
        if spec.window is not None:
            return f"sliding({fmt_tokens(spec.window)})"
        if spec.chunk is not None:
            return f"chunked({fmt_tokens(spec.chunk)})"
        return "global"

    def letter(self, spec: LayerSpec) -> str:
        return {"sliding": "s", "chunked": "c"}.get(spec.kind, "g")

    def describe(self, cfg: ModelConfig) -> Part:
        a = cfg.resolved_attention
        H, KV, hd = a.n_heads, a.n_kv_heads, a.head_dim
        kind = "MHA" if KV == H else "MQA" if KV == 1 else "GQA"
        text = f"MHA: {H} heads of {hd}" if kind == "MHA" else f"{kind}: {H} query, {KV} KV head{'s' if KV > 1 else ''} of {hd}"
        extras = [
            name for name, on in (
                ("QKV bias", a.qkv_bias), ("sinks", a.sinks), (f"softcap {a.softcap:g}" if a.softcap else "", a.softcap),
                ("output gate", a.output_gate),
                ("NoPE temperature" if isinstance(a.temperature, AttnTemperature) else "length temperature", a.temperature),
            ) if on
        ]
        data = {
            "kind": kind.lower(), "n_heads": H, "n_kv_heads": KV, "head_dim": hd, "qkv_bias": a.qkv_bias,
            "out_bias": a.out_bias, "scale": a.scale, "window": a.window, "chunk": a.chunk, "sinks": a.sinks,
            "softcap": a.softcap, "output_gate": a.output_gate,
            "temperature": None if a.temperature is None else {"type": type(a.temperature).__name__, **vars(a.temperature)},
        }
        return Part(text + "".join(", " + e for e in extras), data, f"{kind} {H}/{KV}")

    def tiny(self, cfg: ModelConfig, d_model: int, n_heads: int, short: int) -> dict[str, Any]:
        a = cfg.attention
        kv = cfg.resolved_attention.n_kv_heads
        t = a.temperature
        if isinstance(t, AttnTemperature):  # where the temperature starts to act, within a test sequence
            t = replace(t, floor_scale=float(short))
        elif isinstance(t, LengthTemperature):
            t = replace(t, length=short)
        return {"attention": replace(
            a,
            n_heads=n_heads,
            # keep the shape: MHA stays MHA, MQA stays MQA, GQA stays grouped
            n_kv_heads=None if a.n_kv_heads is None else n_heads if kv == a.n_heads else 1 if kv == 1 else max(2, n_heads // 2),
            # an unset head_dim follows the width; a given one (Gemma: 256 != 1152 / 4) shrinks with it
            head_dim=None if a.head_dim is None else d_model // n_heads,
            window=None if a.window is None else min(a.window, short),  # shorter than a test sequence
            chunk=None if a.chunk is None else min(a.chunk, short),
            temperature=t,
        )}


ATTENTION = Attention()
