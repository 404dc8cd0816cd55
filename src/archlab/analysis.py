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

from .model_config import ModelConfig
from .parts import FFNS, MIXERS, norm_params

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


# Norms per block by residual layout (nn/block.py): sandwich normalises both sides of each sublayer.
_BLOCK_NORMS = {"pre": 2, "post": 2, "output": 2, "parallel": 2, "sandwich": 4, "normed_residual": 2}


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
        # each kind's cost is the same in every layer of that kind: count it once
        mixer = {k: MIXERS[k].params(c) for k in {s.mixer for s in c.layers}}
        ffn = {k: FFNS[k].params(c) for k in {s.ffn for s in c.layers}}
        norms = _BLOCK_NORMS[c.block] * norm_params(c.norm, c.d_model)
        return tuple(
            LayerCost(
                index=s.index, mixer=s.mixer, kind=s.kind, ffn=s.ffn, window=s.window, chunk=s.chunk,
                rope=s.rope is not None, mixer_params=mixer[s.mixer], ffn_params=ffn[s.ffn][0],
                ffn_active=ffn[s.ffn][1], norm_params=norms,
            )
            for s in c.layers
        )

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
    def flops_per_token(self, context: int) -> int:
        """Forward FLOPs of one token that sees `context` tokens (itself included)."""
        _check_positive(context, "context")
        c = self.config
        total = 2 * c.d_model * c.vocab_size  # the output head
        for s in c.layers:
            total += MIXERS[s.mixer].flops(c, s, context) + FFNS[s.ffn].flops(c)
        return total

    # ---- memory --------------------------------------------------------------------------------
    def cache_bytes_per_layer(self, tokens: int, dtype: str = "bfloat16") -> list[int]:
        """Cache bytes per layer for one sequence of `tokens` tokens."""
        _check_positive(tokens, "tokens")
        b, c = dtype_bytes(dtype), self.config
        return [MIXERS[s.mixer].cache_bytes(c, s, tokens, b) for s in c.layers]

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
    from .catalog import resolve

    return Analysis(resolve(name_or_config))
