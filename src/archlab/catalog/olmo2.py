"""OLMo 2 (Allen Institute for AI, Nov 2024): a fully open LLaMA-style model (SwiGLU, RoPE
theta 500K, RMSNorm, no biases, untied head, multi-head attention) with two changes made for
training stability.

# diff with LLaMA
- Norms on the sublayer outputs, inside the residual: h = x + norm(attn(x)), then
  out = h + norm(mlp(h)) (HF `Olmo2DecoderLayer`: post_attention_layernorm and
  post_feedforward_layernorm; there is no norm on the sublayer input). block="output".
- QK-norm over the whole projection: one RMSNorm of n_heads * head_dim on the queries and one of
  n_kv_heads * head_dim on the keys, applied before the split into heads and before RoPE
  (HF `Olmo2Attention.q_norm/k_norm`). qk_norm_scope="all".

Numbers: config.json of allenai/OLMo-2-1124-7B on the Hugging Face hub (hidden_size 4096,
32 layers, 32 heads and 32 kv heads, intermediate_size 11008, vocab_size 100352,
max_position_embeddings 4096, rope_theta 500000, rms_norm_eps 1e-6, attention_bias false,
tie_word_embeddings false).
"""

from ..model_config import AttentionConfig, FFNConfig, ModelConfig, NormConfig, RopeConfig
from . import Published, preset


@preset("olmo-2-7b", Published(
    "7B", "OLMo et al. 2024, 2 OLMo 2 Furious (arXiv:2501.00656), and the allenai/OLMo-2-1124-7B model card: "
    "OLMo 2 7B",
    note="the authors give the size only as 7B; we count 7.30B, of which 0.82B are the untied embedding "
    "and head over a 100K vocabulary"))
def olmo_2_7b() -> ModelConfig:
    norm = NormConfig("rmsnorm", eps=1e-6)
    return ModelConfig(
        name="olmo-2-7b",
        family="olmo2",
        source="huggingface.co/allenai/OLMo-2-1124-7B/blob/main/config.json",
        vocab_size=100352,
        d_model=4096,
        n_layers=32,
        max_seq_len=4096,
        norm=norm,
        block="output",
        position=RopeConfig(theta=500000.0),
        attention=AttentionConfig(n_heads=32, n_kv_heads=32, qk_norm=norm, qk_norm_scope="all"),
        ffn=FFNConfig(hidden=11008, kind="glu", activation="silu"),
    )
