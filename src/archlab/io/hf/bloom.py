"""HF `bloom`: ALiBi instead of positions, a LayerNorm right after the embedding, and
Megatron's fused query_key_value interleaved per head.

modeling_bloom.py: BloomAttention._reshape views the fused projection as (heads, 3, head_dim),
the same per-head layout as GPT-NeoX. BLOOM adds slope_h * (key position) to the logits,
positions counted from each row's first real token (build_alibi_tensor); ours adds
-slope_h * (query - key), which differs by a constant per query row, to which softmax is blind.
bloom_gelu_forward is GELU's tanh approximation; every linear and norm has a bias.
"""

from __future__ import annotations


from ...model_config import AttentionConfig, FFNConfig, ModelConfig, NormConfig
from ..mapping import Rule, rename
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


def _bloom_config(hf: dict) -> ModelConfig:
    if hf.get("apply_residual_connection_post_layernorm"):
        # the residual would be the normalised stream: no block kind of ours computes that
        raise CheckpointError("config.json: apply_residual_connection_post_layernorm=true is not supported (expected false)")
    # pretraining_tp / slow_but_exact only split the output matmuls into slices: the same function
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
    return base_model_alternatives(rules + megatron_layer_rules("transformer.h.{i}.", "self_attention"))


register(HFFamily(("bloom",), _bloom_config, _bloom_rules))
