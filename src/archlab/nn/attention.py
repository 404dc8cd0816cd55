"""Softmax attention with grouped key/value heads: MHA, GQA and MQA are one module that
differs only in n_kv_heads (the number of key/value heads each group of queries shares).

Optional parts, each from a config field: QK-norm (per head or over the whole projection),
attention sinks, logit softcapping, an output gate, ALiBi, Llama 4's temperature tuning.

    x ─ wq, wk, wv ─ [qk_norm] ─ [rope | temperature] ─ softmax(q.k * scale [+ alibi], [softcap],
        [sinks]) v ─ [* sigmoid(gate)] ─ wo
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..cache import KVCache, SlidingKVCache
from ..model_config import AttnTemperature, LayerSpec, LengthTemperature, ModelConfig
from .context import Context
from .fused import linears_on
from .norm import make_norm
from .position import apply_rope

Mask = tuple[torch.Tensor | None, bool]


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Mask, scale: float) -> torch.Tensor:
    """q (B, H, T, d), k (B, KV, S, d), v (B, KV, S, dv) -> (B, H, T, dv), with SDPA.
    mask: (boolean mask or None, is_causal), as Context.attn_mask gives it."""
    attn_mask, causal = mask
    gqa = k.shape[1] != q.shape[1]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=causal, scale=scale, enable_gqa=gqa)


def attend_eager(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: Mask,
    scale: float,
    softcap: float | None = None,
    sinks: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    after_softcap: torch.Tensor | None = None,
) -> torch.Tensor:
    """The same attention written out, for what SDPA cannot express: logits squashed by
    softcap * tanh(logits / softcap) (Gemma 2, Grok), an additive bias (ALiBi), and sinks,
    one learned logit per head that joins each softmax as a key with no value (GPT-OSS).
    after_softcap (B, T): a per-query multiplier on the capped logits (Grok's temperature)."""
    H, T, S = q.shape[1], q.shape[2], k.shape[2]
    if k.shape[1] != H:
        k = k.repeat_interleave(H // k.shape[1], dim=1)
        v = v.repeat_interleave(H // v.shape[1], dim=1)
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # (B, H, T, S)
    if softcap is not None:
        scores = softcap * torch.tanh(scores / softcap)
    if after_softcap is not None:
        scores = scores * after_softcap[:, None, :, None].to(scores.dtype)
    if bias is not None:
        scores = scores + bias
    allowed, causal = mask
    if causal:
        allowed = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    if sinks is not None:
        sink = sinks.to(scores.dtype).view(1, H, 1, 1).expand(scores.shape[0], H, T, 1)
        scores = torch.cat((scores, sink), dim=-1)
    probs = scores.float().softmax(dim=-1).to(q.dtype)
    if sinks is not None:
        probs = probs[..., :-1]
    return torch.matmul(probs, v)


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes (Press et al. 2022): a geometric sequence from 2^(-8/n); for a
    head count that is not a power of two, the extra heads take every other slope of the next
    power of two, as BLOOM's reference does."""
    def powers(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start ** (i + 1) for i in range(n)]

    closest = 2 ** math.floor(math.log2(n_heads))
    slopes = powers(closest)
    if closest != n_heads:
        slopes += powers(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


_SLOPES_ON: dict = {}


def _alibi_slopes_on(n_heads: int, device: torch.device) -> torch.Tensor:
    # copied to the device once, not on every forward (a blocking copy waits for the device); a
    # plain dict, which torch.compile reads as a constant (it traces through lru_cache wrappers)
    if (n_heads, device) not in _SLOPES_ON:
        _SLOPES_ON[(n_heads, device)] = alibi_slopes(n_heads).to(device)
    return _SLOPES_ON[(n_heads, device)]


class Attention(nn.Module):
    # parameters whose output is added to the residual stream (Transformer.init_weights scales them)
    residual_writers = ("wo.weight",)

    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__()
        a = cfg.resolved_attention
        self.n_heads, self.n_kv_heads, self.head_dim = a.n_heads, a.n_kv_heads, a.head_dim
        self.window, self.chunk = spec.window, spec.chunk
        self.rope = spec.rope
        # YaRN's softmax factor (mscale_all_dim) is DeepSeek's, applied in MLA only, as its reference does
        self.scale = a.scale if a.scale is not None else self.head_dim**-0.5
        if a.scale_by_inverse_layer:
            self.scale /= spec.index + 1
        self.softcap = a.softcap
        self.alibi = cfg.position == "alibi"
        # Llama 4 tunes the temperature of its NoPE layers only; Grok's applies everywhere
        t = a.temperature
        self.temperature = t if isinstance(t, LengthTemperature) or (isinstance(t, AttnTemperature) and spec.rope is None) else None
        self.gated = a.output_gate
        d, hd = cfg.d_model, self.head_dim
        # with an output gate, each head's query projection is followed by its gate's: [q_h | g_h]
        self.wq = nn.Linear(d, self.n_heads * hd * (2 if self.gated else 1), bias=a.qkv_bias)
        self.wk = nn.Linear(d, self.n_kv_heads * hd, bias=a.qkv_bias)
        self.wv = nn.Linear(d, self.n_kv_heads * hd, bias=a.qkv_bias)
        self.wo = nn.Linear(self.n_heads * hd, d, bias=a.out_bias)
        self.qk_norm_scope = None
        self.qk_norm_after_rope = a.qk_norm_after_rope
        if a.qk_norm is not None and (spec.rope is not None or a.qk_norm_in_nope_layers):
            self.qk_norm_scope = a.qk_norm_scope
            per_head = a.qk_norm_scope == "head"
            self.q_norm = make_norm(a.qk_norm, hd if per_head else self.n_heads * hd)
            self.k_norm = make_norm(a.qk_norm, hd if per_head else self.n_kv_heads * hd)
        self.sinks = nn.Parameter(torch.empty(self.n_heads)) if a.sinks else None

    def reset_parameters(self) -> None:
        if self.sinks is not None:
            nn.init.zeros_(self.sinks)

    def _temperature(self, p: torch.Tensor) -> torch.Tensor:
        """Per-query logit multiplier (B, T) from 0-based positions p (Llama 4's scales q; Grok's
        the logits after the softcap)."""
        t = self.temperature
        if isinstance(t, LengthTemperature):
            # Grok: past `length` tokens, logits grow with log2 of the position
            return torch.where(p > t.length, torch.log2(p.clamp(min=1)) / math.log2(t.length), torch.ones_like(p))
        # Llama 4 NoPE layers: sharpen attention as positions grow (arXiv:2501.19399)
        return 1 + t.scale * torch.log1p(torch.floor((p + 1) / t.floor_scale))

    def new_cache(self, batch: int, capacity: int, dtype: torch.dtype, device) -> KVCache | SlidingKVCache:
        held = self.window or self.chunk
        if held is not None and held < capacity:
            return SlidingKVCache(batch, self.n_kv_heads, self.head_dim, held, dtype, device)
        return KVCache(batch, self.n_kv_heads, self.head_dim, capacity, dtype, device)

    def forward(self, x: torch.Tensor, ctx: Context, cache: KVCache | SlidingKVCache | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        H, KV, hd = self.n_heads, self.n_kv_heads, self.head_dim
        q, k, v = linears_on(x, (self.wq, self.wk, self.wv))
        gate = None
        if self.gated:
            q, gate = q.view(B, T, H, 2 * hd).chunk(2, dim=-1)  # (B, T, H, hd) each
        if self.qk_norm_scope == "all":  # OLMo 2: over the whole projection, before splitting heads
            q, k = self.q_norm(q.reshape(B, T, H * hd)), self.k_norm(k)
        q = q.reshape(B, T, H, hd)
        k = k.view(B, T, KV, hd)
        if self.qk_norm_scope == "head" and not self.qk_norm_after_rope:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)  # (B, H, T, hd), (B, KV, T, hd)
        v = v.view(B, T, KV, hd).transpose(1, 2)  # (B, KV, T, hd)
        if self.rope is not None:
            cos, sin = ctx.rope[self.rope]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.qk_norm_scope == "head" and self.qk_norm_after_rope:  # Llama 4: cancels YaRN's cos/sin factor
            q, k = self.q_norm(q), self.k_norm(k)
        after_softcap = None
        if isinstance(self.temperature, LengthTemperature):
            # SGLang's attention kernels multiply by xai_temperature after the logit softcap
            # (qk = cap * tanh(qk / cap); qk *= temperature), so it cannot be folded into q
            after_softcap = self._temperature(ctx.positions.float())
        elif self.temperature is not None:
            q = (q * self._temperature(ctx.positions.float())[:, None, :, None]).to(q.dtype)
        key_slots = None
        if cache is not None:
            k, v, key_slots = cache.update(k, v, ctx.start)  # (B, KV, S, hd)
            if self.chunk is not None and T == 1 and ctx.pad is None and key_slots is not None and not ctx.static:
                # decoding in a chunked layer: only the current block's keys (ring entries 0..n-1,
                # since blocks start at multiples of the ring size) can be seen; skip the rest
                # (a static step keeps the whole ring, its mask hides the other block)
                n = ctx.start % self.chunk + 1
                k, v, key_slots = k[:, :, :n], v[:, :, :n], key_slots[:n]
        mask = ctx.attn_mask(self.window, key_slots, self.chunk)
        bias = None
        if self.alibi:
            slopes = _alibi_slopes_on(H, x.device)
            bias = -(slopes.view(1, H, 1, 1) * ctx.relative_distance(key_slots)).to(q.dtype)  # (1, H, T, S)
        if self.sinks is not None or self.softcap is not None or bias is not None or after_softcap is not None:
            y = attend_eager(q, k, v, mask, self.scale, self.softcap, self.sinks, bias, after_softcap)
        else:
            y = attend(q, k, v, mask, self.scale)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, H * hd)
        if gate is not None:
            y = y * torch.sigmoid(gate.reshape(B, T, H * hd))
        return self.wo(y)
