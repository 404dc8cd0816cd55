"""Gated DeltaNet linear attention (Yang, Kautz & Hatamizadeh, arXiv:2412.06464), as in
Qwen3-Next's "linear_attention" layers (HF modeling_qwen3_next.py: Qwen3NextGatedDeltaNet).

Instead of a cache of every key and value, each value head keeps one fixed-size state
S (dk x dv), a fast-weight memory that maps keys to values. Per token t:

    S <- exp(g_t) S                                   forget a little (0 < exp(g_t) < 1)
    S <- S + beta_t k_t (v_t - S^T k_t)^T             delta rule: write the part of v_t
                                                      the memory does not yet predict
    o_t = S^T q_t

The whole layer:

    x ─┬─ wqkvz ─> [q | k | v] ─ causal depthwise conv (kernel 4) ─ silu ─> q, k, v
       │          [z] ───────────────────────────────────────────────────────────────┐
       └─ wba ──> b, a:  beta = sigmoid(b),  g = -exp(A_log) * softplus(a + dt_bias)  │
       q, k: l2-normalised, q * dk^-0.5; v heads share k heads in groups (like GQA)   │
       gated delta rule ─> o ─ rmsnorm(o) * silu(z) ─ wo <────────────────────────────┘

The rule runs in two equal forms (tested equal): `delta_rule_recurrent`, one token at a
time (decoding), and `delta_rule_chunked`, parallel inside chunks of 64 tokens with a
sequential pass over chunks (prefill, training). Both run in float32, as HF's do.

Shape letters: B batch, T tokens, H value heads, L tokens in a chunk, dk / dv key / value
head dims, C convolution channels (2 Hk dk + H dv).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..cache import DeltaNetCache
from ..model_config import LayerSpec, ModelConfig
from .context import Context
from .ffn import ACTIVATIONS

CHUNK = 64


def l2_normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x / sqrt(|x|^2 + eps) over the last dim: the flash-linear-attention form HF follows
    (eps inside the root, not max(|x|, eps))."""
    return x * torch.rsqrt((x * x).sum(dim=-1, keepdim=True) + eps)


def delta_rule_recurrent(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor, state: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gated delta rule one token at a time.

    q, k (B, H, T, dk); v (B, H, T, dv); g (log decay, <= 0) and beta (B, H, T); state
    (B, H, dk, dv), the memory before the first token. Returns o (B, H, T, dv) and the
    state after the last token. Float32 (or float64) throughout."""
    outs = []
    for t in range(q.shape[2]):
        state = state * g[:, :, t].exp()[..., None, None]  # forget
        k_t = k[:, :, t]  # (B, H, dk)
        predicted = torch.einsum("bhkv,bhk->bhv", state, k_t)  # S^T k: what the memory recalls for k_t
        delta = (v[:, :, t] - predicted) * beta[:, :, t, None]  # (B, H, dv)
        state = state + k_t[..., :, None] @ delta[..., None, :]  # rank-1 write k delta^T, (B, H, dk, dv)
        outs.append(torch.einsum("bhkv,bhk->bhv", state, q[:, :, t]))  # S^T q
    return torch.stack(outs, dim=2), state


def delta_rule_chunked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    state: torch.Tensor,
    chunk: int = CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same rule, parallel inside chunks of `chunk` tokens (the last may be shorter).

    Inside a chunk starting from state S0, let G_i = exp(g_1 + ... + g_i) be the decay from
    the chunk's start to token i. Unrolling the recurrence, the state after token i is

        S_i = G_i S0 + sum_{j <= i} (G_i / G_j) k_j u_j^T

    where u_j = beta_j (v_j - G_j S0^T k_j - sum_{m < j} (G_j / G_m) (k_j . k_m) u_m) is what
    token j actually writes. Those L equations are one unit lower-triangular system

        (I + A) U = beta * (V - (G * K) S0),   A_jm = beta_j (G_j / G_m) k_j . k_m  (m < j)

    solved at once (the "UT transform" of DeltaNet's chunked form). Then every output of the
    chunk is o_i = G_i S0^T q_i + sum_{j <= i} (G_i / G_j) (q_i . k_j) u_j, two matmuls, and
    the state moves on to S_L. Same arguments and results as delta_rule_recurrent."""
    T = k.shape[2]
    outs = []
    for s in range(0, T, chunk):
        qc, kc, vc = q[:, :, s : s + chunk], k[:, :, s : s + chunk], v[:, :, s : s + chunk]  # (B, H, L, d)
        bc = beta[:, :, s : s + chunk, None]  # (B, H, L, 1)
        log_G = g[:, :, s : s + chunk].cumsum(dim=-1)  # (B, H, L)
        L = log_G.shape[-1]
        causal = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()  # i >= j
        # G_i / G_j for j <= i, else 0; masked before exp, where i < j the ratio could overflow
        ratio = (log_G[..., :, None] - log_G[..., None, :]).masked_fill(~causal, float("-inf")).exp()  # (B, H, L, L)
        G = log_G.exp()[..., None]  # (B, H, L, 1)
        A = (bc * (kc @ kc.transpose(-1, -2)) * ratio).tril(-1)  # (B, H, L, L), strictly lower
        rhs = bc * (vc - (G * kc) @ state)  # (B, H, L, dv)
        eye = torch.eye(L, dtype=A.dtype, device=A.device)
        u = torch.linalg.solve_triangular(eye + A, rhs, upper=False, unitriangular=True)  # (B, H, L, dv)
        outs.append((G * qc) @ state + ((qc @ kc.transpose(-1, -2)) * ratio) @ u)
        to_end = (log_G[..., -1:] - log_G).exp()[..., None]  # G_L / G_j, (B, H, L, 1)
        state = log_G[..., -1].exp()[..., None, None] * state + (to_end * kc).transpose(-1, -2) @ u  # (B, H, dk, dv)
    return torch.cat(outs, dim=2), state


class GatedRMSNorm(nn.Module):
    """rmsnorm(o) * w * silu(z) over each head's dv features, one weight for all heads. A plain
    weight (starts at 1), not the (1 + w) of the model's other norms (HF Qwen3NextRMSNormGated).
    Normalises in float32, scales in the input dtype, gates in float32, as HF does (float64
    stays float64)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        wide = torch.promote_types(x.dtype, torch.float32)
        normed = F.rms_norm(x.to(wide), self.weight.shape, eps=self.eps)
        return (self.weight * normed.to(x.dtype) * F.silu(z.to(wide))).to(x.dtype)


class GatedDeltaNet(nn.Module):
    """Qwen3-Next's linear-attention mixer. Our in-projection is laid out plainly as
    [q (Hk dk) | k (Hk dk) | v (H dv) | z (H dv)] and [b (H) | a (H)]; HF's checkpoint groups
    the rows per key head, and the loader reorders them (io/hf/qwen3_next.py)."""

    residual_writers = ("wo.weight",)

    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__()
        g = cfg.linear_attention
        self.n_k_heads, self.n_heads, self.dk, self.dv = g.n_k_heads, g.n_v_heads, g.k_head_dim, g.v_head_dim
        self.kernel = g.conv_kernel
        self.channels = g.conv_channels
        self.chunk = CHUNK
        d, H = cfg.d_model, g.n_v_heads
        self.wqkvz = nn.Linear(d, self.channels + H * self.dv, bias=False)
        self.wba = nn.Linear(d, 2 * H, bias=False)
        self.conv = nn.Parameter(torch.empty(self.channels, self.kernel))  # one filter per channel
        self.conv_act = ACTIVATIONS[g.conv_activation]
        self.dt_bias = nn.Parameter(torch.empty(H))
        self.A_log = nn.Parameter(torch.empty(H))
        self.norm = GatedRMSNorm(self.dv, cfg.norm.eps)
        self.wo = nn.Linear(H * self.dv, d, bias=False)

    def reset_parameters(self) -> None:
        # nn.Conv1d's default for a depthwise filter (fan_in = kernel), and HF's decay init:
        # dt_bias 1, A uniform in [0.01, 16] (per-head forgetting rates from slow to fast)
        bound = 1 / math.sqrt(self.kernel)
        nn.init.uniform_(self.conv, -bound, bound)
        nn.init.ones_(self.dt_bias)
        with torch.no_grad():
            self.A_log.copy_(torch.empty_like(self.A_log).uniform_(0.01, 16).log())

    def new_cache(self, batch: int, capacity: int, dtype: torch.dtype, device) -> DeltaNetCache:
        return DeltaNetCache(batch, self.channels, self.kernel, self.n_heads, self.dk, self.dv, dtype, device)

    def _conv(self, u: torch.Tensor, cache: DeltaNetCache | None) -> torch.Tensor:
        """Causal depthwise convolution then its activation (silu in Qwen3-Next): u (B, T, C) -> (B, T, C). The kernel - 1
        inputs before the first token come from the cache (zeros when there is none)."""
        B, _, C = u.shape
        u = u.transpose(1, 2)  # (B, C, T)
        history = cache.conv.to(u.dtype) if cache is not None else u.new_zeros(B, C, self.kernel - 1)
        full = torch.cat((history, u), dim=-1)  # (B, C, kernel - 1 + T)
        if cache is not None:
            cache.conv.copy_(full[:, :, full.shape[-1] - (self.kernel - 1) :])
        y = F.conv1d(full, self.conv.unsqueeze(1), groups=C)  # (B, C, T)
        return self.conv_act(y).transpose(1, 2)

    def forward(self, x: torch.Tensor, ctx: Context, cache: DeltaNetCache | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        H, Hk, dk, dv = self.n_heads, self.n_k_heads, self.dk, self.dv
        if ctx.pad is not None:
            # Left padding must not reach the state: zeroed inputs give (no biases) q = k = v = 0
            # at padded slots, so they write nothing and the state stays empty until the row's
            # first real token (HF: apply_mask_to_padding_states).
            real = ctx.query_slots()[None, :] >= ctx.pad[:, None]  # (B, T)
            x = x * real[..., None].to(x.dtype)
        qkv, z = self.wqkvz(x).split([self.channels, H * dv], dim=-1)  # (B, T, C), (B, T, H dv)
        b, a = self.wba(x).chunk(2, dim=-1)  # (B, T, H) each
        q, k, v = self._conv(qkv, cache).split([Hk * dk, Hk * dk, H * dv], dim=-1)
        # the rule runs in float32 (as HF's does), or wider when the model is
        wide = torch.promote_types(x.dtype, torch.float32)
        beta = b.sigmoid()
        g = -self.A_log.to(wide).exp() * F.softplus(a.to(wide) + self.dt_bias)  # (B, T, H) log decay
        # value head h reads and writes with key head h // (H / Hk)
        q = q.view(B, T, Hk, dk).repeat_interleave(H // Hk, dim=2)  # (B, T, H, dk)
        k = k.view(B, T, Hk, dk).repeat_interleave(H // Hk, dim=2)
        v = v.reshape(B, T, H, dv)
        q, k, v, g, beta = (t.transpose(1, 2).to(wide) for t in (q, k, v, g, beta))  # heads first
        q, k = l2_normalize(q) * dk**-0.5, l2_normalize(k)
        state = cache.state.to(wide) if cache is not None else q.new_zeros(B, H, dk, dv)
        if T == 1:
            o, state = delta_rule_recurrent(q, k, v, g, beta, state)  # (B, H, 1, dv)
        else:
            o, state = delta_rule_chunked(q, k, v, g, beta, state, self.chunk)  # (B, H, T, dv)
        if cache is not None:
            cache.state.copy_(state)
        o = o.transpose(1, 2).to(x.dtype)  # (B, T, H, dv)
        o = self.norm(o, z.view(B, T, H, dv))
        return self.wo(o.reshape(B, T, H * dv))
