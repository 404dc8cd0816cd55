"""Multi-head latent attention (DeepSeek-V2/V3).

Each token's keys and values are compressed into one kv_lora_rank latent c (plus a small
RoPE key k_pe shared by all heads); per head, k_nope = W_UK c and v = W_UV c. Position
lives only in the decoupled q_pe/k_pe, so the latent itself is position-free.

    x ─┬─ wq (or wq_a ─ q_norm ─ wq_b) ─> [q_nope | q_pe] ─ rope(q_pe)
       └─ wkv_a ─> [c | k_pe] ─ kv_norm(c), rope(k_pe)
                    c ─ wkv_b ─> [k_nope | v] per head
       softmax([q_nope | q_pe] . [k_nope | k_pe] * scale) v ─ wo
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import LayerSpec, ModelConfig
from .attention import attend
from .context import Context
from .norm import make_norm
from .position import apply_rope


class MLA(nn.Module):
    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__()
        a = cfg.attention
        self.n_heads = a.n_heads
        self.nope, self.rope_dim, self.v_dim, self.rank = a.qk_nope_head_dim, a.qk_rope_head_dim, a.v_head_dim, a.kv_lora_rank
        self.rope = spec.rope
        self.scale = a.qk_head_dim**-0.5
        if spec.rope.scaling is not None:
            self.scale *= spec.rope.scaling.softmax_factor()
        d, H = cfg.d_model, a.n_heads
        if a.q_lora_rank is None:
            self.wq = nn.Linear(d, H * a.qk_head_dim, bias=False)
        else:
            self.wq_a = nn.Linear(d, a.q_lora_rank, bias=a.bias)
            self.q_norm = make_norm(cfg.norm, a.q_lora_rank)
            self.wq_b = nn.Linear(a.q_lora_rank, H * a.qk_head_dim, bias=False)
        self.wkv_a = nn.Linear(d, a.kv_lora_rank + a.qk_rope_head_dim, bias=a.bias)
        self.kv_norm = make_norm(cfg.norm, a.kv_lora_rank)
        self.wkv_b = nn.Linear(a.kv_lora_rank, H * (a.qk_nope_head_dim + a.v_head_dim), bias=False)
        self.wo = nn.Linear(H * a.v_head_dim, d, bias=a.bias)

    def query(self, x: torch.Tensor) -> torch.Tensor:
        return self.wq(x) if hasattr(self, "wq") else self.wq_b(self.q_norm(self.wq_a(x)))

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        B, T, _ = x.shape
        H = self.n_heads
        q = self.query(x).view(B, T, H, self.nope + self.rope_dim).transpose(1, 2)  # (B, H, T, dqk)
        q_nope, q_pe = q.split([self.nope, self.rope_dim], dim=-1)
        c, k_pe = self.wkv_a(x).split([self.rank, self.rope_dim], dim=-1)  # (B, T, r), (B, T, dr)
        c = self.kv_norm(c)
        cos, sin = ctx.rope[self.rope]
        q_pe = apply_rope(q_pe, cos, sin)
        k_pe = apply_rope(k_pe.unsqueeze(1), cos, sin)  # (B, 1, T, dr)
        kv = self.wkv_b(c).view(B, T, H, self.nope + self.v_dim).transpose(1, 2)  # (B, H, T, dn + dv)
        k_nope, v = kv.split([self.nope, self.v_dim], dim=-1)
        q = torch.cat((q_nope, q_pe), dim=-1)
        k = torch.cat((k_nope, k_pe.expand(B, H, T, self.rope_dim)), dim=-1)
        y = attend(q, k, v, ctx.mask(None), self.scale)  # (B, H, T, dv)
        return self.wo(y.transpose(1, 2).reshape(B, T, H * self.v_dim))
