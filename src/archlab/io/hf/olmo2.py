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

from ...model_config import ModelConfig
from .core import HFFamily, register
from .llama_like import llama_like_config, rms_norm, with_defaults
from .llama_rules import IGNORE, OUTPUT_NORMS, decoder_rules

# Olmo2Config defaults (configuration_olmo2.py)
_DEFAULTS = {"num_key_value_heads": None, "rms_norm_eps": 1e-5, "hidden_act": "silu", "tie_word_embeddings": False,
             "attention_bias": False}


def _olmo2_config(hf: dict) -> ModelConfig:
    hf = with_defaults(hf, _DEFAULTS)
    norm = rms_norm(hf)
    return llama_like_config(
        hf, family="olmo2", norm=norm, block="output", attention={"qk_norm": norm, "qk_norm_scope": "all"},
    )


register(HFFamily(("olmo2",), _olmo2_config, lambda cfg, hf: decoder_rules(OUTPUT_NORMS), ignore=IGNORE))
