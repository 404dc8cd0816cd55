"""HF `bloom`: ALiBi instead of positions, a LayerNorm right after the embedding, and
Megatron's fused query_key_value interleaved per head.

modeling_bloom.py: BloomAttention._reshape views the fused projection as (heads, 3, head_dim),
the same per-head layout as GPT-NeoX. BLOOM adds slope_h * (key position) to the logits,
positions counted from each row's first real token (build_alibi_tensor); ours adds
-slope_h * (query - key), which differs by a constant per query row, to which softmax is blind.
bloom_gelu_forward is GELU's tanh approximation; every linear and norm has a bias.

apply_residual_connection_post_layernorm: BloomBlock adds each sublayer's output to its
normalised input instead of the raw stream (block="normed_residual").

pretraining_tp > 1 with slow_but_exact: BloomAttention and BloomMLP compute self_attention.dense
and mlp.dense_4h_to_h as a sum of pretraining_tp F.linear slices of the weight *without the
bias*, so HF's slow path leaves those two biases out (the fast path, and slow_but_exact=false,
adds them). We compute what HF computes: those biases load as zeros, with a warning. The
slicing itself changes only the order of the sums.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import torch

from ...model_config import AttentionConfig, FFNConfig, ModelConfig, NormConfig
from ..mapping import Rule, Tensors, rename
from .core import CheckpointError, HFFamily, base_model_alternatives, get_field, register
from .gpt_neox import megatron_layer_rules

# BLOOM's config.json has no context length (ALiBi sets no hard limit); the BigScience model
# cards give the training sequence length as 2048 for every size.
BLOOM_TRAINED_CONTEXT = 2048


def _first(hf: dict, *keys: str, default=None):
    for k in keys:
        if hf.get(k) is not None:
            return hf[k]
    if default is None:
        raise CheckpointError(f"config.json: field {keys[0]!r} is missing (needed for model_type 'bloom')")
    return default


def _flag(hf: dict, key: str) -> bool:
    v = hf.get(key, False)
    if not isinstance(v, bool):
        raise CheckpointError(f"config.json: {key}={v!r} (expected true or false)")
    return v


def drops_output_biases(hf: dict) -> bool:
    """HF's slow_but_exact path (pretraining_tp > 1) computes the two output projections without their biases."""
    tp = hf.get("pretraining_tp", 1)
    if not isinstance(tp, int) or isinstance(tp, bool) or tp < 1:
        raise CheckpointError(f"config.json: pretraining_tp={tp!r} (expected a positive integer)")
    return tp > 1 and _flag(hf, "slow_but_exact")


def _bloom_config(hf: dict) -> ModelConfig:
    if drops_output_biases(hf):
        warnings.warn(
            f"bloom: pretraining_tp={hf['pretraining_tp']} with slow_but_exact=true: HF's BLOOM leaves out the biases of "
            "self_attention.dense and mlp.dense_4h_to_h on that path; they are loaded as zeros to compute what HF computes",
            stacklevel=2,
        )
    d = _first(hf, "hidden_size", "n_embed")
    n_heads = _first(hf, "n_head", "num_attention_heads")
    if d % n_heads:
        raise CheckpointError(f"config.json: hidden_size={d} is not divisible by n_head={n_heads}")
    eps = get_field(hf, "layer_norm_epsilon", 1e-5)
    return ModelConfig(
        name=str(hf.get("model_type")),
        family="bloom",
        vocab_size=get_field(hf, "vocab_size"),
        d_model=d,
        n_layers=_first(hf, "n_layer", "num_hidden_layers"),
        max_seq_len=_first(hf, "seq_length", "max_position_embeddings", default=BLOOM_TRAINED_CONTEXT),
        position="alibi",
        block="normed_residual" if _flag(hf, "apply_residual_connection_post_layernorm") else "pre",
        norm=NormConfig("layernorm", eps=eps, bias=True),
        embed_norm=True,
        attention=AttentionConfig(n_heads=n_heads, qkv_bias=True, out_bias=True),
        ffn=FFNConfig(hidden=4 * d, kind="mlp", activation="gelu_tanh", bias=True),
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
    )


def _bloom_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    rules = [
        rename("tok_emb.weight", "transformer.word_embeddings.weight"),
        rename("head.weight", "lm_head.weight"),
    ]
    for ours, theirs in (("embed_norm", "transformer.word_embeddings_layernorm"), ("norm", "transformer.ln_f")):
        for w in ("weight", "bias"):
            rules.append(rename(f"{ours}.{w}", f"{theirs}.{w}"))
    layer = megatron_layer_rules("transformer.h.{i}.", "self_attention")
    if drops_output_biases(hf):
        dropped = ("layers.{i}.attn.wo.bias", "layers.{i}.ffn.down.bias")
        layer = [replace(r, load=_zeros) if r.ours[0] in dropped else r for r in layer]
    return base_model_alternatives(rules + layer)


def _zeros(ts: Tensors, cfg: ModelConfig) -> Tensors:
    return [torch.zeros_like(t) for t in ts]


register(HFFamily(("bloom",), _bloom_config, _bloom_rules))
