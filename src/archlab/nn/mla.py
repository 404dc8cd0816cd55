"""Multi-head latent attention (DeepSeek-V2/V3).

Each token's keys and values are compressed into one kv_lora_rank latent c (plus a small
RoPE key k_pe shared by all heads); per head, k_nope = W_UK c and v = W_UV c. Position
lives only in the decoupled q_pe/k_pe, so the latent itself is position-free.

    x ─┬─ wq (or wq_a ─ q_norm ─ wq_b) ─> [q_nope | q_pe] ─ rope(q_pe)
       └─ wkv_a ─> [c | k_pe] ─ kv_norm(c), rope(k_pe)
                    c ─ wkv_b ─> [k_nope | v] per head
       softmax([q_nope | q_pe] . [k_nope | k_pe] * scale) v ─ wo

Two equal ways to compute it (as in DeepSeek-V3's inference/model.py):
  naive     decompress k_nope and v for every key, then ordinary attention. Cheapest when
            there are as many queries as keys (training, a first prefill).
  absorbed  fold W_UK into the query (q_nope W_UK: a query in latent space) and apply W_UV
            after attention. Then attention runs over the cached [c | k_pe] directly: it is
            multi-query attention with one key/value head of width rank + rope_dim, whose
            value is c. This is what makes the cache small: only [c | k_pe] is stored.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ..cache import MLACache
from ..model_config import LayerSpec, ModelConfig
from .attention import attend
from .context import Context
from .norm import make_norm
from .position import apply_rope


class MLA(nn.Module):
    residual_writers = ("wo.weight",)

    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__()
        a = cfg.attention
        self.n_heads = a.n_heads
        self.nope, self.rope_dim, self.v_dim, self.rank = a.qk_nope_head_dim, a.qk_rope_head_dim, a.v_head_dim, a.kv_lora_rank
        # None (a NoPE layer of rope_layers): q_pe and k_pe stay unrotated, a position-free
        # shared key part, at the plain 1/sqrt(qk_head_dim) (HF's KimiLinearAttention, Kimi
        # Linear's NoPE MLA, modeling_kimi_linear.py); YaRN's softmax factor comes with YaRN
        self.rope = spec.rope
        self.scale = a.qk_head_dim**-0.5
        if spec.rope is not None and spec.rope.scaling is not None:
            self.scale *= spec.rope.scaling.softmax_factor()
        # None: naive for a first prefill, absorbed once a cache holds earlier tokens. Tests force either.
        self.absorb: bool | None = None
        d, H = cfg.d_model, a.n_heads
        latent_norm = replace(cfg.norm, eps=a.latent_norm_eps)  # not the block norms' eps (MLAConfig)
        if a.q_lora_rank is None:
            self.wq = nn.Linear(d, H * a.qk_head_dim, bias=False)
        else:
            self.wq_a = nn.Linear(d, a.q_lora_rank, bias=a.bias)
            self.q_norm = make_norm(latent_norm, a.q_lora_rank)
            self.wq_b = nn.Linear(a.q_lora_rank, H * a.qk_head_dim, bias=False)
        self.wkv_a = nn.Linear(d, a.kv_lora_rank + a.qk_rope_head_dim, bias=a.bias)
        self.kv_norm = make_norm(latent_norm, a.kv_lora_rank)
        self.wkv_b = nn.Linear(a.kv_lora_rank, H * (a.qk_nope_head_dim + a.v_head_dim), bias=False)
        self.wo = nn.Linear(H * a.v_head_dim, d, bias=a.bias)

    def new_cache(self, batch: int, capacity: int, dtype: torch.dtype, device) -> MLACache:
        return MLACache(batch, self.rank, self.rope_dim, capacity, dtype, device)

    def query(self, x: torch.Tensor) -> torch.Tensor:
        return self.wq(x) if hasattr(self, "wq") else self.wq_b(self.q_norm(self.wq_a(x)))

    def forward(self, x: torch.Tensor, ctx: Context, cache: MLACache | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        H = self.n_heads
        q = self.query(x).view(B, T, H, self.nope + self.rope_dim).transpose(1, 2)  # (B, H, T, dqk)
        q_nope, q_pe = q.split([self.nope, self.rope_dim], dim=-1)
        c, k_pe = self.wkv_a(x).split([self.rank, self.rope_dim], dim=-1)  # (B, T, r), (B, T, dr)
        c = self.kv_norm(c)
        if self.rope is not None:
            cos, sin = ctx.rope[self.rope]
            q_pe = apply_rope(q_pe, cos, sin)
            k_pe = apply_rope(k_pe.unsqueeze(1), cos, sin).squeeze(1)  # (B, T, dr)
        latent = torch.cat((c, k_pe), dim=-1)  # (B, T, r + dr): all a cache needs
        key_slots = None
        if cache is not None:
            latent, key_slots = cache.update(latent, ctx.start)  # (B, S, r + dr)
        # a static step is always a decode step (and must not read its tensor start on the host)
        absorb = self.absorb if self.absorb is not None else (ctx.static or ctx.start > 0)
        mask = ctx.attn_mask(None, key_slots)
        if absorb:
            y = self._absorbed(q_nope, q_pe, latent, mask)
        else:
            y = self._naive(q_nope, q_pe, latent, mask)
        return self.wo(y.transpose(1, 2).reshape(B, T, H * self.v_dim))

    def _naive(self, q_nope, q_pe, latent, mask) -> torch.Tensor:
        B, H, S = latent.shape[0], self.n_heads, latent.shape[1]
        c, k_pe = latent.split([self.rank, self.rope_dim], dim=-1)
        kv = self.wkv_b(c).view(B, S, H, self.nope + self.v_dim).transpose(1, 2)  # (B, H, S, dn + dv)
        k_nope, v = kv.split([self.nope, self.v_dim], dim=-1)
        q = torch.cat((q_nope, q_pe), dim=-1)
        k = torch.cat((k_nope, k_pe.unsqueeze(1).expand(B, H, S, self.rope_dim)), dim=-1)
        return attend(q, k, v, mask, self.scale)  # (B, H, T, dv)

    def _absorbed(self, q_nope, q_pe, latent, mask) -> torch.Tensor:
        w = self.wkv_b.weight.view(self.n_heads, self.nope + self.v_dim, self.rank)
        w_uk, w_uv = w[:, : self.nope], w[:, self.nope :]  # (H, dn, r), (H, dv, r)
        q_latent = torch.einsum("bhtd,hdr->bhtr", q_nope, w_uk)  # (B, H, T, r)
        q = torch.cat((q_latent, q_pe), dim=-1)  # (B, H, T, r + dr)
        B, H, T, _ = q.shape
        S = latent.shape[1]
        # Every head reads the one shared key/value head, so the heads fold into the query axis:
        # one-head attention over the cache as it lies. Handed to SDPA as H query heads over one
        # key head (enable_gqa), the CPU repeats the latent H times, a copy of the whole cache per
        # step: at 8K tokens that made absorbed decode slower than decompressing K and V
        # (`archlab bench --suite mla`, docs/benchmarks.md).
        allowed, causal = mask
        if causal:
            allowed = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)
        if allowed is not None:
            allowed = allowed.reshape(-1, 1, T, S).repeat(1, 1, H, 1)  # row h*T + t is query t's
        kv = latent.unsqueeze(1)  # (B, 1, S, r + dr): one shared key head
        o_latent = attend(q.reshape(B, 1, H * T, -1), kv, kv[..., : self.rank], (allowed, False), self.scale)
        o_latent = o_latent.view(B, H, T, self.rank)  # (B, H, T, r)
        return torch.einsum("bhtr,hvr->bhtv", o_latent, w_uv)  # (B, H, T, dv)
