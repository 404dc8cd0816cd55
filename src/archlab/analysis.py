"""Parameters, FLOPs and KV-cache bytes of a ModelConfig, computed from the config alone:
no tensors, no torch, so a 1T-parameter preset costs nothing to analyse.

The numbers are held to the code by tests: total parameters equal the element count of the
model built on the meta device, cache bytes equal the tensors the caches allocate.

Conventions (also in `Analysis.CONVENTIONS`, printed with every comparison):
- total_params counts every learned parameter once (a tied head shares the embedding).
  Buffers (DeepSeek-V3's selection-only expert bias) are not parameters. Multi-token-prediction
  modules are not part of any preset and are never counted.
- active_params is what one token uses: everything except the routed experts it was not sent
  to. The input embedding table and the output head are included (as DeepSeek and Mixtral
  count); `active_params_as(convention)` leaves them out for sources that do.
- flops_per_token(context) is the forward pass of one token that sees `context` tokens (itself
  included), 2 FLOPs per multiply-add: every weight matrix it uses once, plus attention scores
  and the weighted sum of values over the keys it can see (capped by sliding windows and
  chunks; MLA counted in its standard, decompressed form). The embedding lookup, norms,
  biases and activations are left out (under 1% for every preset).
- kv_cache_bytes(tokens) is what the caches hold after `tokens` tokens: K and V for softmax
  attention (sliding and chunked layers keep at most their window or chunk), MLA's
  latent plus RoPE key, and the fixed-size state of linear-attention layers (its recurrent
  part kept in float32 whatever the cache dtype, as HF's reference does).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .config import AttentionConfig, DeltaNetConfig, FFNConfig, LayerSpec, MLAConfig, ModelConfig, MoEConfig, NormConfig

__all__ = ["analyze", "Analysis", "LayerCost", "dtype_bytes", "DTYPE_BYTES"]

DTYPE_BYTES = {
    "float32": 4, "fp32": 4,
    "bfloat16": 2, "bf16": 2,
    "float16": 2, "fp16": 2,
    "float8": 1, "fp8": 1,
    "int8": 1,
}


def dtype_bytes(dtype: str) -> int:
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPE_BYTES:
        raise ValueError(f"dtype: unknown dtype {dtype!r}; expected one of {sorted(DTYPE_BYTES)}")
    return DTYPE_BYTES[name]


# ---- parameters of each part (mirrors the modules in nn/) ------------------------------------

def norm_params(n: NormConfig, dim: int) -> int:
    if n.kind == "l2norm":
        return 0
    return dim * (2 if n.bias else 1)


def _linear(i: int, o: int, bias: bool = False) -> int:
    return i * o + (o if bias else 0)


def attention_params(d: int, a: AttentionConfig) -> int:
    H, KV, hd = a.n_heads, a.n_kv_heads, a.head_dim
    q_out = H * hd * (2 if a.output_gate else 1)  # the gate is a second query-sized projection
    n = _linear(d, q_out, a.qkv_bias) + 2 * _linear(d, KV * hd, a.qkv_bias) + _linear(H * hd, d, a.out_bias)
    if a.qk_norm is not None:
        if a.qk_norm_scope == "head":
            n += 2 * norm_params(a.qk_norm, hd)
        else:
            n += norm_params(a.qk_norm, H * hd) + norm_params(a.qk_norm, KV * hd)
    if a.sinks:
        n += H
    return n


def mla_params(d: int, a: MLAConfig, norm: NormConfig) -> int:
    H = a.n_heads
    if a.q_lora_rank is None:
        n = _linear(d, H * a.qk_head_dim)
    else:
        n = _linear(d, a.q_lora_rank, a.bias) + norm_params(norm, a.q_lora_rank) + _linear(a.q_lora_rank, H * a.qk_head_dim)
    n += _linear(d, a.kv_lora_rank + a.qk_rope_head_dim, a.bias) + norm_params(norm, a.kv_lora_rank)
    n += _linear(a.kv_lora_rank, H * (a.qk_nope_head_dim + a.v_head_dim))
    n += _linear(H * a.v_head_dim, d, a.bias)
    return n


def deltanet_params(d: int, g: DeltaNetConfig) -> int:
    nk, nv, dk, dv = g.n_k_heads, g.n_v_heads, g.k_head_dim, g.v_head_dim
    n = _linear(d, 2 * nk * dk + 2 * nv * dv)  # q, k, v and the output gate z
    n += _linear(d, 2 * nv)  # per-head write strength b and decay a
    n += g.conv_channels * g.conv_kernel  # depthwise causal convolution, no bias
    n += 2 * nv  # decay parameters A_log and dt_bias
    n += dv  # the gated RMSNorm on each head's output (one weight shared by the heads)
    n += _linear(nv * dv, d)
    return n


def ffn_params(d: int, f: FFNConfig) -> int:
    if f.kind == "mlp":
        return _linear(d, f.hidden, f.bias) + _linear(f.hidden, d, f.bias)
    return 2 * _linear(d, f.hidden, f.bias) + _linear(f.hidden, d, f.bias)


def _expert_params(d: int, m: MoEConfig) -> int:
    return 2 * _linear(d, m.hidden, m.bias) + _linear(m.hidden, d, m.bias)


def moe_params(d: int, m: MoEConfig) -> tuple[int, int]:
    """(total, active per token)."""
    always = _linear(d, m.n_experts, m.router.logit_bias)  # the router scores every expert
    if m.n_shared:
        always += 3 * d * m.hidden * m.n_shared
        if m.shared_gate:
            always += d
    per_expert = _expert_params(d, m)
    return always + m.n_experts * per_expert, always + m.top_k * per_expert


_BLOCK_NORMS = {"pre": 2, "post": 2, "output": 2, "parallel": 2, "sandwich": 4}


# ---- FLOPs of each part -------------------------------------------------------------------------

def _attention_matmul_flops(d: int, a: AttentionConfig) -> int:
    H, KV, hd = a.n_heads, a.n_kv_heads, a.head_dim
    return 2 * (d * H * hd * (2 if a.output_gate else 1) + 2 * d * KV * hd + H * hd * d)


def _mla_matmul_flops(d: int, a: MLAConfig) -> int:
    H = a.n_heads
    q = d * H * a.qk_head_dim if a.q_lora_rank is None else d * a.q_lora_rank + a.q_lora_rank * H * a.qk_head_dim
    kv = d * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank * H * (a.qk_nope_head_dim + a.v_head_dim)
    return 2 * (q + kv + H * a.v_head_dim * d)


def _deltanet_flops(d: int, g: DeltaNetConfig) -> int:
    nk, nv, dk, dv = g.n_k_heads, g.n_v_heads, g.k_head_dim, g.v_head_dim
    proj = d * (2 * nk * dk + 2 * nv * dv) + d * 2 * nv + nv * dv * d
    conv = g.conv_channels * g.conv_kernel
    # per head, 2 FLOPs per multiply-add as everywhere here: read S^T k, write the rank-1
    # update k delta^T into S, read out S^T q. The decay exp(g) S is an elementwise scaling,
    # left out like softmax and the norms are (so it also matches torch's FLOP counter).
    state = nv * 6 * dk * dv
    return 2 * (proj + conv) + state


def _moe_flops(d: int, m: MoEConfig) -> int:
    shared = 3 * d * m.hidden * m.n_shared + (d if m.shared_gate else 0)
    return 2 * (d * m.n_experts + shared + m.top_k * 3 * d * m.hidden)


@dataclass(frozen=True)
class LayerCost:
    index: int
    mixer: str  # "attention", "mla" or "deltanet"
    kind: str  # "global", "sliding", "chunked" or "linear"
    ffn: str  # "dense" or "moe"
    window: int | None
    chunk: int | None
    rope: bool
    mixer_params: int
    ffn_params: int
    ffn_active: int
    norm_params: int

    @property
    def params(self) -> int:
        return self.mixer_params + self.ffn_params + self.norm_params

    @property
    def active(self) -> int:
        return self.mixer_params + self.ffn_active + self.norm_params


@dataclass(frozen=True)
class Analysis:
    config: ModelConfig

    CONVENTIONS = __doc__[__doc__.index("Conventions") :].strip()

    # ---- parameters ----------------------------------------------------------------------------
    @cached_property
    def layers(self) -> tuple[LayerCost, ...]:
        c = self.config
        d = c.d_model
        out = []
        for spec in c.layers:
            if spec.mixer == "deltanet":
                mixer = deltanet_params(d, c.linear_attention)
            elif spec.mixer == "mla":
                mixer = mla_params(d, c.attention, c.norm)
            else:
                mixer = attention_params(d, c.resolved_attention)
            if spec.ffn == "moe":
                ffn, ffn_active = moe_params(d, c.moe)
            else:
                ffn = ffn_active = ffn_params(d, c.resolved_ffn)
            out.append(LayerCost(
                index=spec.index, mixer=spec.mixer, kind=spec.kind, ffn=spec.ffn, window=spec.window, chunk=spec.chunk,
                rope=spec.rope is not None, mixer_params=mixer, ffn_params=ffn, ffn_active=ffn_active,
                norm_params=_BLOCK_NORMS[c.block] * norm_params(c.norm, d),
            ))
        return tuple(out)

    @property
    def embedding_params(self) -> int:
        """The input embedding table (and learned positions, if any)."""
        c = self.config
        return c.vocab_size * c.d_model + (c.max_seq_len * c.d_model if c.position == "learned" else 0)

    @property
    def head_params(self) -> int:
        """The output projection; 0 when tied to the embedding."""
        c = self.config
        return 0 if c.tie_embeddings else c.vocab_size * c.d_model

    @property
    def final_norm_params(self) -> int:
        """The norm after the last block, and the one after the embedding where there is one."""
        c = self.config
        n = 0 if c.block == "post" else norm_params(c.norm, c.d_model)
        return n + (norm_params(c.norm, c.d_model) if c.embed_norm else 0)

    @property
    def total_params(self) -> int:
        return self.embedding_params + self.head_params + self.final_norm_params + sum(l.params for l in self.layers)

    @property
    def active_params(self) -> int:
        return self.active_params_as("all")

    def active_params_as(self, convention: str) -> int:
        """Active parameters per token counted as `convention` says: "all" (embedding and head
        included), "no_embedding" (input embedding left out), "no_embeddings" (both left out;
        for a tied model the shared matrix is then left out entirely)."""
        body = self.final_norm_params + sum(l.active for l in self.layers)
        c = self.config
        head = c.vocab_size * c.d_model  # the matrix the logits are computed with, tied or not
        if convention == "all":
            return body + self.embedding_params + self.head_params
        if convention == "no_embedding":
            return body + head
        if convention == "no_embeddings":
            return body
        raise ValueError(f"convention: expected 'all', 'no_embedding' or 'no_embeddings', got {convention!r}")

    # ---- compute -------------------------------------------------------------------------------
    def _visible(self, spec: LayerSpec, context: int) -> int:
        if spec.window is not None:
            return min(context, spec.window)
        if spec.chunk is not None:
            return (context - 1) % spec.chunk + 1
        return context

    def flops_per_token(self, context: int) -> int:
        """Forward FLOPs of one token that sees `context` tokens (itself included)."""
        _check_positive(context, "context")
        c = self.config
        d = c.d_model
        total = 2 * d * c.vocab_size  # the output head
        for spec in c.layers:
            if spec.mixer == "deltanet":
                total += _deltanet_flops(d, c.linear_attention)
            elif spec.mixer == "mla":
                a = c.attention
                total += _mla_matmul_flops(d, a) + 2 * a.n_heads * (a.qk_head_dim + a.v_head_dim) * self._visible(spec, context)
            else:
                a = c.resolved_attention
                total += _attention_matmul_flops(d, a) + 2 * a.n_heads * 2 * a.head_dim * self._visible(spec, context)
            if spec.ffn == "moe":
                total += _moe_flops(d, c.moe)
            else:
                f = c.resolved_ffn
                total += 2 * d * f.hidden * (2 if f.kind == "mlp" else 3)
        return total

    # ---- memory --------------------------------------------------------------------------------
    def cache_elements(self, tokens: int) -> list[int]:
        """Cache elements per layer for one sequence of `tokens` tokens."""
        _check_positive(tokens, "tokens")
        c = self.config
        out = []
        for spec in c.layers:
            if spec.mixer == "deltanet":
                g = c.linear_attention
                out.append(g.conv_channels * (g.conv_kernel - 1) + g.n_v_heads * g.k_head_dim * g.v_head_dim)
            elif spec.mixer == "mla":
                a = c.attention
                out.append((a.kv_lora_rank + a.qk_rope_head_dim) * tokens)
            else:
                a = c.resolved_attention
                held = min(tokens, spec.window or spec.chunk or tokens)
                out.append(2 * a.n_kv_heads * a.head_dim * held)
        return out

    def cache_bytes_per_layer(self, tokens: int, dtype: str = "bfloat16") -> list[int]:
        """Cache bytes per layer for one sequence of `tokens` tokens."""
        b = dtype_bytes(dtype)
        out = []
        for spec, n in zip(self.config.layers, self.cache_elements(tokens)):
            if spec.mixer == "deltanet":
                g = self.config.linear_attention
                state = g.n_v_heads * g.k_head_dim * g.v_head_dim
                out.append((n - state) * b + state * DTYPE_BYTES["float32"])
            else:
                out.append(n * b)
        return out

    def kv_cache_bytes(self, tokens: int, batch: int = 1, dtype: str = "bfloat16") -> int:
        """Bytes the caches hold for `batch` sequences of `tokens` tokens each."""
        _check_positive(batch, "batch")
        return sum(self.cache_bytes_per_layer(tokens, dtype)) * batch

    def kv_cache_bytes_per_token(self, dtype: str = "bfloat16") -> float:
        """Bytes one more token adds to the cache of a long sequence in the layers whose cache
        grows with length (global and MLA layers); windowed and linear layers add nothing."""
        return sum(self.cache_bytes_per_layer(1_000_001, dtype)) - sum(self.cache_bytes_per_layer(1_000_000, dtype))


def _check_positive(v: int, name: str) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")


def analyze(name_or_config: str | ModelConfig) -> Analysis:
    """Parameters, FLOPs and cache bytes of a preset (by name) or a ModelConfig."""
    from .presets import resolve

    return Analysis(resolve(name_or_config))
