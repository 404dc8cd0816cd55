"""What GPT-2 and GPT-1 (openai-gpt) share: the config.json fields of a GPT-2-shaped model
(`gpt_like_config`), and the checkpoint layout, Linear weights stored as Conv1D (in, out),
q | k | v fused in c_attn, the same tensor names in each block under transformer.h.{i}.
Not a family itself: it registers nothing."""

from __future__ import annotations

from typing import Any

import torch

from ...model_config import AttentionConfig, FFNConfig, ModelConfig, NormConfig
from ..mapping import Rule, Tensors, rename
from .core import get_field


def gpt_like_config(
    hf: dict, *, family: str, activation: str, hidden: int | None = None, attention: dict[str, Any] | None = None,
    **fields: Any,
) -> ModelConfig:
    """The ModelConfig of a GPT-2-shaped config.json: n_embd, n_layer, n_head, n_positions
    (learned positions), LayerNorm of layer_norm_epsilon, biases everywhere, an MLP of
    `hidden` (4 n_embd by default) and `activation`, tied unless tie_word_embeddings says not.
    `attention`: AttentionConfig fields added; `fields`: other ModelConfig fields."""
    d = get_field(hf, "n_embd")
    return ModelConfig(
        name=str(hf.get("model_type")),
        family=family,
        vocab_size=get_field(hf, "vocab_size"),
        d_model=d,
        n_layers=get_field(hf, "n_layer"),
        max_seq_len=get_field(hf, "n_positions"),
        position="learned",
        norm=NormConfig("layernorm", eps=get_field(hf, "layer_norm_epsilon", 1e-5), bias=True),
        attention=AttentionConfig(n_heads=get_field(hf, "n_head"), qkv_bias=True, out_bias=True, **(attention or {})),
        ffn=FFNConfig(hidden=4 * d if hidden is None else hidden, kind="mlp", activation=activation, bias=True),
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
        **fields,
    )


def transpose(ts: Tensors, cfg: ModelConfig) -> Tensors:
    """Conv1D (in, out) <-> Linear (out, in)."""
    return [t.T.contiguous() for t in ts]


def split_qkv(ts: Tensors, cfg: ModelConfig) -> Tensors:
    w = ts[0]
    fused = w.T if w.dim() == 2 else w  # weight (in, 3d) -> (3d, in); bias (3d,)
    return [p.contiguous() for p in fused.chunk(3, dim=0)]


def fuse_qkv(ts: Tensors, cfg: ModelConfig) -> Tensors:
    fused = torch.cat(ts, dim=0)
    return [fused.T.contiguous() if fused.dim() == 2 else fused]


def block_rules(p: str = "transformer.h.{i}.") -> list[Rule]:
    """Every tensor of a block: ln_1 and ln_2 (our attn_norm and ffn_norm, wherever the block
    puts them), c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj, weights and biases."""
    rules = []
    for w in ("weight", "bias"):
        rules.append(Rule(tuple(f"layers.{{i}}.attn.{n}.{w}" for n in ("wq", "wk", "wv")), (f"{p}attn.c_attn.{w}",), split_qkv, fuse_qkv))
        rules += [rename(f"layers.{{i}}.{ours}.{w}", f"{p}{theirs}.{w}") for ours, theirs in (("attn_norm", "ln_1"), ("ffn_norm", "ln_2"))]
    for ours, theirs in (("attn.wo", "attn.c_proj"), ("ffn.up", "mlp.c_fc"), ("ffn.down", "mlp.c_proj")):
        rules.append(rename(f"layers.{{i}}.{ours}.weight", f"{p}{theirs}.weight", transpose, transpose))
        rules.append(rename(f"layers.{{i}}.{ours}.bias", f"{p}{theirs}.bias"))
    return rules
