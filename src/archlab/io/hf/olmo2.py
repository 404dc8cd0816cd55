"""HF `olmo2`: the Llama layer with its norms moved onto the sublayer outputs, inside the
residual (block="output"), and QK-norm over the whole projection (qk_norm_scope="all").

# diff with llama (modeling_olmo2.py)
- Olmo2DecoderLayer: h = x + post_attention_layernorm(attn(x)), then
  h + post_feedforward_layernorm(mlp(h)); no norm on a sublayer's input.
- Olmo2Attention: q_norm is an RMSNorm of num_attention_heads * head_dim over the query
  projection, k_norm one of num_key_value_heads * head_dim over the key projection, both
  before the split into heads and before RoPE.
- `attention_bias` covers q, k, v and o; the MLP has no bias.
- Olmo2RMSNorm multiplies by its weight in float32 before casting back (Llama casts first):
  the same in float32, a rounding apart in bfloat16.
"""

from __future__ import annotations

from ...config import AttentionConfig, FFNConfig, ModelConfig, NormConfig
from .core import HFFamily, activation, get_field, register
from .llama_like import (
    IGNORE,
    OUTPUT_NORMS,
    decoder_rules,
    head_dim,
    positive_int,
    rope,
    with_defaults,
)

# Olmo2Config defaults (configuration_olmo2.py)
_DEFAULTS = {"num_key_value_heads": None, "rms_norm_eps": 1e-5, "hidden_act": "silu", "tie_word_embeddings": False,
             "attention_bias": False}


def _olmo2_config(hf: dict) -> ModelConfig:
    hf = with_defaults(hf, _DEFAULTS)
    norm = NormConfig("rmsnorm", eps=get_field(hf, "rms_norm_eps"))
    bias = bool(hf.get("attention_bias"))
    n_heads = positive_int(hf, "num_attention_heads")
    return ModelConfig(
        name="olmo2",
        family="olmo2",
        vocab_size=positive_int(hf, "vocab_size"),
        d_model=positive_int(hf, "hidden_size"),
        n_layers=positive_int(hf, "num_hidden_layers"),
        max_seq_len=positive_int(hf, "max_position_embeddings"),
        norm=norm,
        block="output",
        position=rope(hf, 10000.0),
        attention=AttentionConfig(
            n_heads=n_heads,
            n_kv_heads=hf.get("num_key_value_heads") or n_heads,  # null: MHA (Olmo2Config.__post_init__)
            head_dim=head_dim(hf),
            qkv_bias=bias,
            out_bias=bias,
            qk_norm=norm,
            qk_norm_scope="all",
        ),
        ffn=FFNConfig(hidden=positive_int(hf, "intermediate_size"), kind="glu", activation=activation(hf, "hidden_act")),
        tie_embeddings=bool(hf.get("tie_word_embeddings")),
    )


register(HFFamily(("olmo2",), _olmo2_config, lambda cfg, hf: decoder_rules(OUTPUT_NORMS), ignore=IGNORE))
