"""Gated DeltaNet linear attention (Qwen3-Next's "linear_attention" layers, nn/deltanet.py): a
causal convolution, then a fixed-size per-head state updated by the gated delta rule."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..model_config import LayerSpec, ModelConfig
from .base import MixerKind, Part, linear

FLOAT32_BYTES = 4


class GatedDeltaNet(MixerKind):
    name = "deltanet"
    module = "archlab.nn.deltanet:GatedDeltaNet"
    json_key = "linear"  # its data under this key where another kind leads the description
    legend = {"l": "linear attention (Gated DeltaNet)"}

    def params(self, cfg: ModelConfig) -> int:
        g, d = cfg.linear_attention, cfg.d_model
        nk, nv, dk, dv = g.n_k_heads, g.n_v_heads, g.k_head_dim, g.v_head_dim
        n = linear(d, 2 * nk * dk + 2 * nv * dv)  # q, k, v and the output gate z
        n += linear(d, 2 * nv)  # per-head write strength b and decay a
        n += g.conv_channels * g.conv_kernel  # depthwise causal convolution, no bias
        n += 2 * nv  # decay parameters A_log and dt_bias
        n += dv  # the gated RMSNorm on each head's output (one weight shared by the heads)
        return n + linear(nv * dv, d)

    def flops(self, cfg: ModelConfig, spec: LayerSpec, context: int) -> int:
        g, d = cfg.linear_attention, cfg.d_model
        nk, nv, dk, dv = g.n_k_heads, g.n_v_heads, g.k_head_dim, g.v_head_dim
        proj = d * (2 * nk * dk + 2 * nv * dv) + d * 2 * nv + nv * dv * d
        conv = g.conv_channels * g.conv_kernel
        # per head, 2 FLOPs per multiply-add as everywhere here: read S^T k, write the rank-1
        # update k delta^T into S, read out S^T q. The decay exp(g) S is an elementwise scaling,
        # left out like softmax and the norms are (so it also matches torch's FLOP counter).
        return 2 * (proj + conv) + nv * 6 * dk * dv

    def cache_bytes(self, cfg: ModelConfig, spec: LayerSpec, tokens: int, dtype_bytes: int) -> int:
        g = cfg.linear_attention
        # the last conv_kernel - 1 inputs in the cache dtype; the recurrent state in float32
        # whatever the cache dtype, as HF's reference keeps it
        return g.conv_channels * (g.conv_kernel - 1) * dtype_bytes + g.n_v_heads * g.k_head_dim * g.v_head_dim * FLOAT32_BYTES

    def cache_words(self, cfg: ModelConfig) -> str:
        return "DeltaNet state"

    def label(self, cfg: ModelConfig) -> str:
        return "Gated DeltaNet"

    def span(self, spec: LayerSpec) -> str:
        return "linear"

    def letter(self, spec: LayerSpec) -> str:
        return "l"

    def describe(self, cfg: ModelConfig) -> Part:
        g = cfg.linear_attention
        return Part(
            f"Gated DeltaNet: {g.n_k_heads} QK / {g.n_v_heads} V heads of {g.k_head_dim}",
            {"kind": "gated_deltanet", **vars(g)}, "DeltaNet",
        )

    def tiny(self, cfg: ModelConfig, d_model: int, n_heads: int, short: int) -> dict[str, Any]:
        g = cfg.linear_attention
        return {"linear_attention": replace(
            g, n_k_heads=2, n_v_heads=2 * (g.n_v_heads // g.n_k_heads), k_head_dim=16, v_head_dim=16,
        )}


DELTANET = GatedDeltaNet()
