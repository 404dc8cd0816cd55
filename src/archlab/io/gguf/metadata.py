"""Reading GGUF metadata: typed values of `{architecture}.*` keys, the vocabulary size, and RoPE
(with Llama 3's scaling recovered from llama.cpp's rope_freqs.weight tensor)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from ...errors import CheckpointError
from ...model_config import BOUNDS, RopeConfig, RopeScaling, shown
from .reader import GGUFFile

__all__ = ["int_value", "float_value", "vocab_size", "rope"]

_MISSING = object()


# Keys a model cannot have zero of: llama.cpp divides by them or sizes tensors with them
# (src/llama-model.cpp, load_hparams), so a 0 is a damaged file, not a config.
_POSITIVE = frozenset(("embedding_length", "block_count", "context_length", "attention.head_count"))
# llama.cpp refuses more layers than it has room for (src/llama-hparams.h, LLAMA_MAX_LAYERS 512;
# load_hparams reads per-layer arrays of that size); a damaged count must not size a config.
_LIMITS = {"block_count": 512}


def _bad(g: GGUFFile, suffix: str, v: Any, expected: str) -> CheckpointError:
    return CheckpointError(f"{g.path}: GGUF metadata {g.architecture}.{suffix}={v!r} ({type(v).__name__}); expected {expected}")


def int_value(g: GGUFFile, suffix: str, default: Any = _MISSING) -> Any:
    """An integer key, refused unless it is one: llama.cpp's loader checks the stored type
    (llama-model-loader.cpp, GGUFMeta), so a float 2.5 is never read as 2, nor NaN as a crash."""
    v = g.arch_value(suffix) if default is _MISSING else g.arch_value(suffix, default)
    if isinstance(v, list):
        # Some architectures give per-layer lists (e.g. OpenELM head counts); one value is all we model.
        if not v or len(set(map(repr, v))) != 1:
            raise CheckpointError(f"{g.path}: {g.architecture}.{suffix} varies per layer ({v}); not supported")
        v = v[0]
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _bad(g, suffix, v, "a non-negative integer")
    if v == 0 and suffix in _POSITIVE:
        raise _bad(g, suffix, v, "a positive integer")
    if suffix in _LIMITS and v > _LIMITS[suffix]:
        raise _bad(g, suffix, v, f"at most {_LIMITS[suffix]} (llama.cpp's LLAMA_MAX_LAYERS)")
    _check_bound(g, suffix, v)
    return v


def float_value(g: GGUFFile, suffix: str, default: Any = _MISSING, positive: bool = False) -> Any:
    """A finite number (an integer is taken as one); `positive` where 0 or less means nothing."""
    v = g.arch_value(suffix) if default is _MISSING else g.arch_value(suffix, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _bad(g, suffix, v, "a finite number")
    if positive and v <= 0:
        raise _bad(g, suffix, v, "a positive number")
    return float(v)


def _check_bound(g: GGUFFile, suffix: str, v: Any) -> None:
    """A count beyond ModelConfig's bounds (model_config.BOUNDS) is refused here, before a reader
    loops over it (per-layer kinds are built from block_count before a ModelConfig exists)."""
    if suffix.endswith("block_count") or suffix == "nextn_predict_layers":
        kind = "layers"
    elif suffix == "vocab_size":
        kind = "vocabulary"
    else:
        kind = "positions"  # the largest of the other bounds: context lengths, widths, head and expert counts
    limit = BOUNDS[kind]
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v > limit:
        raise CheckpointError(f"{g.path}: {g.architecture}.{suffix} is {shown(v)}; expected an integer of at most {limit:,}, "
                              f"archlab's bound on {kind}, far above any published model (archlab.model_config.BOUNDS)")


def vocab_size(g: GGUFFile) -> int:
    if g.has("tokenizer.ggml.tokens"):
        return g.length("tokenizer.ggml.tokens")  # one entry per token; cheaper than decoding them all
    v = int_value(g, "vocab_size", None)
    if v is not None:
        return v
    if "token_embd.weight" in g:
        return g.shape("token_embd.weight")[0]
    raise CheckpointError(f"{g.path}: cannot tell the vocabulary size (no tokenizer.ggml.tokens, {g.architecture}.vocab_size or token_embd.weight)")


# Llama 3.x's RoPE scaling is not in GGUF metadata: llama.cpp's converter
# (convert_hf_to_gguf.py, LlamaModel.generate_extra_tensors) stores the per-frequency divisors
# it implies as a tensor `rope_freqs.weight` instead. We recover the RopeScaling that yields
# exactly those divisors, trying the parameters Meta has used and powers of two for the context.
def _llama3_divisors(s: RopeScaling, theta: float, dim: int) -> torch.Tensor:
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    wavelen = 2 * math.pi / inv_freq
    low_wavelen = s.original_max_seq_len / s.low_freq_factor
    high_wavelen = s.original_max_seq_len / s.high_freq_factor
    smooth = (s.original_max_seq_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor)
    mid = 1.0 / ((1 - smooth) / s.factor + smooth)
    return torch.where(wavelen < high_wavelen, torch.ones_like(mid), torch.where(wavelen > low_wavelen, torch.full_like(mid, s.factor), mid))


def _llama3_from_divisors(g: GGUFFile, divisors: torch.Tensor, theta: float, dim: int, ctx: int) -> RopeScaling | None:
    d = divisors.double()
    if torch.allclose(d, torch.ones_like(d)):
        return None
    factor = float(d.max())
    contexts = sorted({2**k for k in range(4, 21)} | {max(1, round(ctx / factor))})
    # (1, 1): Llama 4 Scout Instruct's band-less form (every frequency divided by 1 or by factor)
    bands = [(lo, hi) for lo in (1.0, 0.5, 2.0) for hi in (4.0, 2.0, 8.0) if hi > lo] + [(1.0, 1.0)]
    for low, high in bands:
        for orig in contexts:
            s = RopeScaling("llama3", factor=factor, original_max_seq_len=orig, low_freq_factor=low, high_freq_factor=high)
            # the band-less form divides by high - low = 0 in a band torch.where never selects
            if torch.allclose(_llama3_divisors(s, theta, dim), d, rtol=1e-4, atol=1e-5):
                return s
    raise CheckpointError(
        f"{g.path}: rope_freqs.weight holds RoPE frequency divisors (max {factor:g}) that match no Llama 3 "
        "scaling (tried low_freq_factor 0.5/1/2, high_freq_factor 2/4/8 or both 1, contexts 16..1M); not supported"
    )


def rope(g: GGUFFile, head_dim: int, ctx: int) -> RopeConfig:
    theta = float_value(g, "rope.freq_base", 10000.0, positive=True)
    rot = int_value(g, "rope.dimension_count", head_dim)
    if rot > head_dim or rot <= 0:
        raise CheckpointError(f"{g.path}: {g.architecture}.rope.dimension_count={rot} must be in (0, head_dim={head_dim}]")
    kind = g.arch_value("rope.scaling.type", "none")
    scaling = None
    if kind in ("linear", "yarn"):
        factor = float_value(g, "rope.scaling.factor", positive=True)
        orig = int_value(g, "rope.scaling.original_context_length", ctx)
        if kind == "linear":
            scaling = RopeScaling("linear", factor=factor, original_max_seq_len=orig)
        else:
            ext = float_value(g, "rope.scaling.yarn_ext_factor", None)
            if ext is not None and ext not in (-1.0, 1.0):
                # -1: llama.cpp's "unset", which it takes as 1 for YaRN, as every HF YaRN computes
                raise CheckpointError(f"{g.path}: {g.architecture}.rope.scaling.yarn_ext_factor={ext} is not supported (1)")
            # the converter writes HF's attention_factor as yarn_attn_factor (TextModel.set_gguf_parameters);
            # attn_factor is the older key
            attention = float_value(g, "rope.scaling.yarn_attn_factor", float_value(g, "rope.scaling.attn_factor", None))
            scaling = RopeScaling(
                "yarn", factor=factor, original_max_seq_len=orig,
                beta_fast=float_value(g, "rope.scaling.yarn_beta_fast", 32.0),
                beta_slow=float_value(g, "rope.scaling.yarn_beta_slow", 1.0),
                attention_factor=attention,
            )
    elif kind != "none":
        raise CheckpointError(f"{g.path}: {g.architecture}.rope.scaling.type={kind!r} is not supported (supported: none, linear, yarn)")
    if "rope_freqs.weight" in g:
        if scaling is not None:
            raise CheckpointError(f"{g.path}: has both rope.scaling.type={kind!r} and rope_freqs.weight; not supported")
        divisors = torch.from_numpy(g.read("rope_freqs.weight")).flatten()
        if not bool(torch.isfinite(divisors).all() and (divisors > 0).all()):
            # llama.cpp divides each frequency by these (ggml rope's freq_factors)
            raise CheckpointError(
                f"{g.path}: rope_freqs.weight holds {divisors.tolist()[:8]}...; expected finite positive RoPE frequency divisors"
            )
        if divisors.numel() != rot // 2:
            raise CheckpointError(f"{g.path}: rope_freqs.weight has {divisors.numel()} entries, expected rope dimensions / 2 = {rot // 2}")
        scaling = _llama3_from_divisors(g, divisors, theta, rot, ctx)
    return RopeConfig(theta=theta, partial=rot / head_dim, scaling=scaling)
