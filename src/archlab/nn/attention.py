"""Softmax attention with grouped key/value heads: MHA, GQA and MQA are one module that
differs only in n_kv_heads (the number of key/value heads each group of queries shares)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..cache import KVCache, SlidingKVCache
from ..config import LayerSpec, ModelConfig
from .context import Context
from .position import apply_rope


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: tuple[torch.Tensor | None, bool], scale: float) -> torch.Tensor:
    """q (B, H, T, d), k (B, KV, S, d), v (B, KV, S, dv) -> (B, H, T, dv).
    mask: (boolean mask or None, is_causal), as Context.attn_mask gives it."""
    attn_mask, causal = mask
    gqa = k.shape[1] != q.shape[1]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=causal, scale=scale, enable_gqa=gqa)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__()
        a = cfg.attention
        self.n_heads, self.n_kv_heads, self.head_dim = a.n_heads, a.n_kv_heads, a.head_dim
        self.window = spec.window
        self.rope = spec.rope
        # YaRN's softmax factor (mscale_all_dim) is DeepSeek's, applied in MLA only, as its reference does
        self.scale = a.scale if a.scale is not None else self.head_dim**-0.5
        d, hd = cfg.d_model, self.head_dim
        self.wq = nn.Linear(d, self.n_heads * hd, bias=a.qkv_bias)
        self.wk = nn.Linear(d, self.n_kv_heads * hd, bias=a.qkv_bias)
        self.wv = nn.Linear(d, self.n_kv_heads * hd, bias=a.qkv_bias)
        self.wo = nn.Linear(self.n_heads * hd, d, bias=a.out_bias)

    def new_cache(self, batch: int, capacity: int, dtype: torch.dtype, device) -> KVCache | SlidingKVCache:
        if self.window is not None and self.window < capacity:
            return SlidingKVCache(batch, self.n_kv_heads, self.head_dim, self.window, dtype, device)
        return KVCache(batch, self.n_kv_heads, self.head_dim, capacity, dtype, device)

    def forward(self, x: torch.Tensor, ctx: Context, cache: KVCache | SlidingKVCache | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        if self.rope is not None:
            cos, sin = ctx.rope[self.rope]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        key_slots = None
        if cache is not None:
            k, v, key_slots = cache.update(k, v, ctx.start)  # (B, KV, S, hd)
        y = attend(q, k, v, ctx.attn_mask(self.window, key_slots), self.scale)  # (B, H, T, hd)
        return self.wo(y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))
