"""HF `gpt_neox` (GPT-NeoX-20B, Pythia): parallel attention + MLP blocks, partial RoPE, and
Megatron's fused query_key_value interleaved per head.

modeling_gpt_neox.py: GPTNeoXLayer adds attn(input_layernorm(x)) and
mlp(post_attention_layernorm(x)) to x when use_parallel_residual (our block="parallel"),
else runs them one after the other (block="pre"). GPTNeoXAttention views the fused projection
as (heads, 3 * head_size) and chunks each head's row block into q | k | v; RoPE (rotate-half)
turns the first int(head_size * rotary_pct) features of each head. The MLP's linears always
carry biases; attention_bias switches the attention's.
"""

from __future__ import annotations

import torch

from ...model_config import AttentionConfig, FFNConfig, ModelConfig, NormConfig
from ..mapping import Rule, Tensors, rename
from .core import CheckpointError, HFFamily, activation, get_field, register
from .values import bool_field
from .rope import read_rope, rope_dict


def split_qkv_per_head(ts: Tensors, cfg: ModelConfig) -> Tensors:
    """Megatron's fused QKV, rows ordered head by head as [q_h | k_h | v_h] (GPT-NeoX's
    query_key_value, BLOOM's too) -> separate wq, wk, wv. Weight (3 H hd, d) or bias (3 H hd,)."""
    a = cfg.resolved_attention
    w = ts[0]
    per_head = w.view(a.n_heads, 3, a.head_dim, *w.shape[1:])  # (H, 3, hd[, d])
    return [per_head[:, j].reshape(a.n_heads * a.head_dim, *w.shape[1:]).contiguous() for j in range(3)]


def fuse_qkv_per_head(ts: Tensors, cfg: ModelConfig) -> Tensors:
    a = cfg.resolved_attention
    rest = ts[0].shape[1:]
    stacked = torch.stack([t.view(a.n_heads, a.head_dim, *rest) for t in ts], dim=1)  # (H, 3, hd[, d])
    return [stacked.reshape(3 * a.n_heads * a.head_dim, *rest).contiguous()]


def megatron_layer_rules(p: str, attention: str) -> list[Rule]:
    """Every tensor of a Megatron-style layer under `p` (GPT-NeoX's, BLOOM's): the two norms,
    the fused per-head query_key_value and the dense of `attention`, the MLP, each with a bias."""
    rules = []
    for w in ("weight", "bias"):
        qkv = tuple(f"layers.{{i}}.attn.{n}.{w}" for n in ("wq", "wk", "wv"))
        rules.append(Rule(qkv, (f"{p}{attention}.query_key_value.{w}",), split_qkv_per_head, fuse_qkv_per_head))
        for ours, theirs in (("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm"),
                             ("attn.wo", f"{attention}.dense"), ("ffn.up", "mlp.dense_h_to_4h"), ("ffn.down", "mlp.dense_4h_to_h")):
            rules.append(rename(f"layers.{{i}}.{ours}.{w}", f"{p}{theirs}.{w}"))
    return rules


def _rope_fields(hf: dict) -> dict:
    """GPT-NeoX's config names its RoPE fields rotary_pct / rotary_emb_base (defaults 0.25 and
    10000): GPTNeoXConfig.convert_rope_params_to_dict fills the RoPE dict (rope_scaling or
    rope_parameters) from them, never from a top-level partial_rotary_factor or rope_theta."""
    params = rope_dict(hf)
    params.setdefault("rope_theta", hf.get("rotary_emb_base", 10000.0))
    params.setdefault("partial_rotary_factor", hf.get("rotary_pct", 0.25))
    skip = ("rope_scaling", "rope_theta", "partial_rotary_factor")
    return {**{k: v for k, v in hf.items() if k not in skip}, "rope_parameters": params}


def _gpt_neox_config(hf: dict) -> ModelConfig:
    d = get_field(hf, "hidden_size")
    n_heads = get_field(hf, "num_attention_heads")
    if d % n_heads:
        raise CheckpointError(f"config.json: hidden_size={d} is not divisible by num_attention_heads={n_heads}")
    parallel = hf.get("use_parallel_residual", True)
    if not isinstance(parallel, bool):
        raise CheckpointError(f"config.json: use_parallel_residual={parallel!r} (expected true or false)")
    bias = bool(hf.get("attention_bias", True))
    acts = {"hidden_act": get_field(hf, "hidden_act", "gelu")}  # GPTNeoXConfig's default
    return ModelConfig(
        name=str(hf.get("model_type")),
        family="gpt_neox",
        vocab_size=get_field(hf, "vocab_size"),
        d_model=d,
        n_layers=get_field(hf, "num_hidden_layers"),
        max_seq_len=get_field(hf, "max_position_embeddings"),
        norm=NormConfig("layernorm", eps=get_field(hf, "layer_norm_eps", 1e-5), bias=True),
        position=read_rope(_rope_fields(hf), honours_partial=True),  # rotates rotary_ndims of each head
        block="parallel" if parallel else "pre",
        attention=AttentionConfig(n_heads=n_heads, qkv_bias=bias, out_bias=bias),
        # GPTNeoXMLP's linears have biases whatever attention_bias says
        ffn=FFNConfig(hidden=get_field(hf, "intermediate_size"), kind="mlp", activation=activation(acts, "hidden_act"), bias=True),
        tie_embeddings=bool_field(hf, "tie_word_embeddings", False),
    )


def _gpt_neox_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    return megatron_layer_rules("gpt_neox.layers.{i}.", "attention") + [
        rename("tok_emb.weight", "gpt_neox.embed_in.weight"),
        rename("norm.weight", "gpt_neox.final_layer_norm.weight"),
        rename("norm.bias", "gpt_neox.final_layer_norm.bias"),
        # v5 names the module lm_head but converts it to and from the hub's embed_out on save and load
        rename("head.weight", "embed_out.weight"),
    ]


register(HFFamily(
    ("gpt_neox",), _gpt_neox_config, _gpt_neox_rules,
    # buffers older checkpoints (EleutherAI/gpt-neox-20b, Pythia) saved: the causal mask and RoPE frequencies
    ignore=(r".*\.attention\.(masked_)?bias$", r".*rotary_emb\.inv_freq$"),
))
