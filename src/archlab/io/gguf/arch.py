"""GGUF architectures -> archlab: for each `general.architecture`, how its metadata reads as a
ModelConfig and which rules (io/mapping.py) pair llama.cpp's tensor names with ours.

llama.cpp's converter stores the query/key rows of each head in adjacent-pair RoPE order; our
model uses HF's rotate-half order, so those rules permute the rows back on load. New families
(qwen3, gemma3, ...) are one `GGUFArch` entry each in ARCHITECTURES.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ...model_config import AttentionConfig, ConfigError, FFNConfig, ModelConfig, NormConfig, RopeConfig, RopeScaling
from ...errors import CheckpointError
from ..layouts import rope_pairs_to_halves
from ..mapping import Rule, rename
from .reader import GGUFFile

__all__ = ["GGUFArch", "ARCHITECTURES", "architecture", "read_config"]

_MISSING = object()


# ---- reading the metadata -------------------------------------------------------------------

def _int(g: GGUFFile, suffix: str, default: Any = _MISSING) -> Any:
    v = g.arch_value(suffix) if default is _MISSING else g.arch_value(suffix, default)
    if isinstance(v, list):
        # Some architectures give per-layer lists (e.g. OpenELM head counts); one value is all we model.
        if len(set(v)) != 1:
            raise CheckpointError(f"{g.path}: {g.architecture}.{suffix} varies per layer ({v}); not supported")
        v = v[0]
    return None if v is None else int(v)


def _vocab_size(g: GGUFFile) -> int:
    if g.has("tokenizer.ggml.tokens"):
        return g.length("tokenizer.ggml.tokens")  # one entry per token; cheaper than decoding them all
    v = g.arch_value("vocab_size", None)
    if v is not None:
        return int(v)
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
    for low in (1.0, 0.5, 2.0):
        for high in (4.0, 2.0, 8.0):
            if high <= low:
                continue
            for orig in contexts:
                s = RopeScaling("llama3", factor=factor, original_max_seq_len=orig, low_freq_factor=low, high_freq_factor=high)
                if torch.allclose(_llama3_divisors(s, theta, dim), d, rtol=1e-4, atol=1e-5):
                    return s
    raise CheckpointError(
        f"{g.path}: rope_freqs.weight holds RoPE frequency divisors (max {factor:g}) that match no Llama 3 "
        "scaling (tried low_freq_factor 0.5/1/2, high_freq_factor 2/4/8, contexts 16..1M); not supported"
    )


def _rope(g: GGUFFile, head_dim: int, ctx: int) -> RopeConfig:
    theta = float(g.arch_value("rope.freq_base", 10000.0))
    rot = _int(g, "rope.dimension_count", head_dim)
    if rot > head_dim or rot <= 0:
        raise CheckpointError(f"{g.path}: {g.architecture}.rope.dimension_count={rot} must be in (0, head_dim={head_dim}]")
    kind = g.arch_value("rope.scaling.type", "none")
    scaling = None
    if kind in ("linear", "yarn"):
        factor = float(g.arch_value("rope.scaling.factor"))
        orig = int(g.arch_value("rope.scaling.original_context_length", ctx))
        if kind == "linear":
            scaling = RopeScaling("linear", factor=factor, original_max_seq_len=orig)
        else:
            scaling = RopeScaling(
                "yarn", factor=factor, original_max_seq_len=orig,
                beta_fast=float(g.arch_value("rope.scaling.yarn_beta_fast", 32.0)),
                beta_slow=float(g.arch_value("rope.scaling.yarn_beta_slow", 1.0)),
                attention_factor=g.arch_value("rope.scaling.attn_factor", None),
            )
    elif kind != "none":
        raise CheckpointError(f"{g.path}: {g.architecture}.rope.scaling.type={kind!r} is not supported (supported: none, linear, yarn)")
    if "rope_freqs.weight" in g:
        if scaling is not None:
            raise CheckpointError(f"{g.path}: has both rope.scaling.type={kind!r} and rope_freqs.weight; not supported")
        divisors = torch.from_numpy(g.read("rope_freqs.weight")).flatten()
        if divisors.numel() != rot // 2:
            raise CheckpointError(f"{g.path}: rope_freqs.weight has {divisors.numel()} entries, expected rope dimensions / 2 = {rot // 2}")
        scaling = _llama3_from_divisors(g, divisors, theta, rot, ctx)
    return RopeConfig(theta=theta, partial=rot / head_dim, scaling=scaling)


def _llama_config(g: GGUFFile) -> ModelConfig:
    d = _int(g, "embedding_length")
    n_heads = _int(g, "attention.head_count")
    head_dim = _int(g, "attention.key_length", None) or (d // n_heads if n_heads else None)
    value_dim = _int(g, "attention.value_length", head_dim)
    if value_dim != head_dim:
        raise CheckpointError(f"{g.path}: {g.architecture}.attention.value_length={value_dim} differs from key_length={head_dim}; not supported")
    ctx = _int(g, "context_length")
    return ModelConfig(
        name=g.path.stem,
        family="llama",
        source=str(g.path),
        vocab_size=_vocab_size(g),
        d_model=d,
        n_layers=_int(g, "block_count"),
        max_seq_len=ctx,
        norm=NormConfig("rmsnorm", eps=float(g.arch_value("attention.layer_norm_rms_epsilon", 1e-5))),
        position=_rope(g, head_dim, ctx),
        attention=AttentionConfig(
            n_heads=n_heads,
            n_kv_heads=_int(g, "attention.head_count_kv", n_heads),
            head_dim=head_dim,
            # llama.cpp's llama graph takes optional biases when the tensors are present.
            qkv_bias="blk.0.attn_q.bias" in g,
            out_bias="blk.0.attn_output.bias" in g,
        ),
        ffn=FFNConfig(hidden=_int(g, "feed_forward_length"), kind="glu", activation="silu", bias="blk.0.ffn_up.bias" in g),
        # llama.cpp reuses token_embd for the output when the file has no output.weight.
        tie_embeddings="output.weight" not in g,
    )


# ---- tensor names and layouts ---------------------------------------------------------------

@dataclass(frozen=True)
class GGUFArch:
    read_config: Callable[[GGUFFile], ModelConfig]
    rules: Callable[[ModelConfig], list[Rule]]
    # regular expressions of GGUF tensors consumed while reading the config (not model weights)
    ignore: tuple[str, ...] = ()


def _llama_rules(cfg: ModelConfig) -> list[Rule]:
    # llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute) pairs each head's RoPE rows
    q = rope_pairs_to_halves(lambda c: c.resolved_attention.n_heads)
    k = rope_pairs_to_halves(lambda c: c.resolved_attention.n_kv_heads)
    rules = [
        rename("tok_emb.weight", "token_embd.weight"),
        rename("norm.weight", "output_norm.weight"),
        rename("head.weight", "output.weight"),
        rename("layers.{i}.attn_norm.weight", "blk.{i}.attn_norm.weight"),
        rename("layers.{i}.ffn_norm.weight", "blk.{i}.ffn_norm.weight"),
    ]
    for w in ("weight", "bias"):
        rules += [
            rename(f"layers.{{i}}.attn.wq.{w}", f"blk.{{i}}.attn_q.{w}", q),
            rename(f"layers.{{i}}.attn.wk.{w}", f"blk.{{i}}.attn_k.{w}", k),
            rename(f"layers.{{i}}.attn.wv.{w}", f"blk.{{i}}.attn_v.{w}"),
            rename(f"layers.{{i}}.attn.wo.{w}", f"blk.{{i}}.attn_output.{w}"),
        ]
        for ours, theirs in (("gate", "ffn_gate"), ("up", "ffn_up"), ("down", "ffn_down")):
            rules.append(rename(f"layers.{{i}}.ffn.{ours}.{w}", f"blk.{{i}}.{theirs}.{w}"))
    return rules


# general.architecture -> how to read it
ARCHITECTURES: dict[str, GGUFArch] = {
    "llama": GGUFArch(_llama_config, _llama_rules, ignore=(r"^rope_freqs\.weight$",)),
}


def architecture(g: GGUFFile) -> GGUFArch:
    arch = g.architecture
    if arch not in ARCHITECTURES:
        raise CheckpointError(
            f"{g.path}: general.architecture {arch!r} is not supported; supported: {', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[arch]


def read_config(g: GGUFFile, arch: GGUFArch) -> ModelConfig:
    try:
        return arch.read_config(g)
    except ConfigError as e:
        raise CheckpointError(f"{g.path}: metadata describes an invalid model: {e}") from None
