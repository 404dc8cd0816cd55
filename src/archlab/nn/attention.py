"""Softmax attention with grouped key/value heads: MHA, GQA and MQA are one module that
differs only in n_kv_heads (the number of key/value heads each group of queries shares)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import LayerSpec, ModelConfig
from .context import Context
from .position import apply_rope


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float) -> torch.Tensor:
    """q (B, H, T, d), k (B, KV, S, d), v (B, KV, S, dv) -> (B, H, T, dv). mask None = causal."""
    gqa = k.shape[1] != q.shape[1]
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=q.shape[2] > 1, scale=scale, enable_gqa=gqa)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=gqa)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__()
        a = cfg.attention
        self.n_heads, self.n_kv_heads, self.head_dim = a.n_heads, a.n_kv_heads, a.head_dim
        self.window = spec.window
        self.rope = spec.rope
        self.scale = a.scale if a.scale is not None else self.head_dim**-0.5
        if spec.rope is not None and spec.rope.scaling is not None:
            self.scale *= spec.rope.scaling.softmax_factor()
        d, hd = cfg.d_model, self.head_dim
        self.wq = nn.Linear(d, self.n_heads * hd, bias=a.qkv_bias)
        self.wk = nn.Linear(d, self.n_kv_heads * hd, bias=a.qkv_bias)
        self.wv = nn.Linear(d, self.n_kv_heads * hd, bias=a.qkv_bias)
        self.wo = nn.Linear(self.n_heads * hd, d, bias=a.out_bias)

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        if self.rope is not None:
            cos, sin = ctx.rope[self.rope]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = attend(q, k, v, ctx.mask(self.window), self.scale)  # (B, H, T, hd)
        return self.wo(y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))
