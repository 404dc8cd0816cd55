"""Gemma 3 (Google DeepMind, 2025), text decoder only.

# diff with LLaMA
- Five sliding-window layers to one global layer. HF `Gemma3TextConfig.__post_init__` builds
  `layer_types` from `sliding_window_pattern` (6 in the checkpoints and the default): layer i
  is "sliding_attention" when (i + 1) % 6 != 0, so layers 5, 11, 17, ... are global and a
  stack whose depth is not a multiple of 6 ends on sliding layers (27B: 60 and 61). The
  window (HF `sliding_window`) counts the query itself: 512 tokens (1B), 1024 (27B).
- Two RoPEs: sliding layers rotate with rope_local_base_freq 10K and no scaling; global layers
  with rope_theta 1M, and in the 27B with linear scaling by 8 (32K -> 128K; HF applies
  `rope_scaling` to the "full_attention" RoPE only).
- Sandwich norms: RMSNorm before and after both the attention and the MLP
  (input/post_attention/pre_feedforward/post_feedforward_layernorm).
- Every RMSNorm (blocks, final, QK) scales by (1 + w), w initialised at 0 (`Gemma3RMSNorm`).
- QK-norm: that RMSNorm over each head's query and key (weight of head_dim), before RoPE.
- Softmax scale query_pre_attn_scalar ** -0.5 (27B: 168, not head_dim 128; 1B: 256 = head_dim).
- GeGLU with the tanh GELU (`gelu_pytorch_tanh`), embeddings times sqrt(d_model), tied head,
  no attention or final-logit softcapping (both null in Gemma 3).
- head_dim given explicitly (27B: 32 heads x 128 = 4096 != d_model 5376).

The 4B/12B/27B checkpoints are Gemma3ForConditionalGeneration: a 417M SigLIP vision encoder
and a projector in front of this decoder. These presets are the decoder alone
(`text_config`); the 27B figure below is the text model's (see its note).

Numbers: google/gemma-3-1b-pt config.json (model_type gemma3_text); google/gemma-3-27b-pt
config.json `text_config`, which lists only what differs from `Gemma3TextConfig`'s defaults
(vocab_size 262208, max_position_embeddings 131072, rope_theta 1e6, rope_local_base_freq 1e4,
rms_norm_eps 1e-6, hidden_activation gelu_pytorch_tanh, tied embeddings). Sizes: Gemma 3
Technical Report (arXiv:2503.19786) Table 1.
"""

from ..model_config import SQRT_D_MODEL, AttentionConfig, FFNConfig, ModelConfig, NormConfig, Pattern, RopeConfig, RopeScaling
from . import Published, preset

SLIDING_WINDOW_PATTERN = 6


def gemma3_layer_types(pattern: int = SLIDING_WINDOW_PATTERN) -> Pattern:
    """HF Gemma3TextConfig's rule: sliding unless (i + 1) is a multiple of the pattern."""
    return Pattern.every(pattern, "global", "sliding")


def gemma3_config(
    name: str,
    source: str,
    *,
    vocab_size: int,
    d_model: int,
    n_layers: int,
    n_heads: int,
    n_kv_heads: int,
    head_dim: int,
    ffn_hidden: int,
    window: int,
    query_pre_attn_scalar: float,
    max_seq_len: int,
    scaling: RopeScaling | None = None,
) -> ModelConfig:
    norm = NormConfig("rmsnorm", eps=1e-6, unit_offset=True)
    return ModelConfig(
        name=name,
        family="gemma3",
        source=source,
        vocab_size=vocab_size,
        d_model=d_model,
        n_layers=n_layers,
        max_seq_len=max_seq_len,
        norm=norm,
        block="sandwich",
        position=RopeConfig(theta=1e6, scaling=scaling),
        rope_local=RopeConfig(theta=1e4),
        attention=AttentionConfig(
            n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim,
            scale=query_pre_attn_scalar ** -0.5, window=window,
            qk_norm=norm, qk_norm_scope="head",
        ),
        ffn=FFNConfig(hidden=ffn_hidden, kind="glu", activation="gelu_tanh"),
        tie_embeddings=True,
        embed_scale=SQRT_D_MODEL,
        layer_types=gemma3_layer_types(),
    )


@preset("gemma-3-1b", Published(
    "1B", "Gemma 3 Technical Report (arXiv:2503.19786) Table 1: 1B = 302M embedding + 698M non-embedding "
    "parameters, no vision encoder",
    note="we count 302.0M embedding + 697.9M non-embedding = 999.9M"))
def gemma_3_1b() -> ModelConfig:
    return gemma3_config(
        "gemma-3-1b", "huggingface.co/google/gemma-3-1b-pt/blob/main/config.json",
        vocab_size=262144, d_model=1152, n_layers=26, n_heads=4, n_kv_heads=1, head_dim=256,
        ffn_hidden=6912, window=512, query_pre_attn_scalar=256, max_seq_len=32768,
    )


@preset("gemma-3-27b", Published(
    "27B", "Gemma 3 Technical Report (arXiv:2503.19786) Table 1: 27B = 417M vision encoder + 1,416M "
    "embedding + 25,600M non-embedding parameters",
    note="the 27B checkpoint holds 27.4B with the vision encoder; the text decoder alone is 1,416M + 25,600M "
    "= 27.0B by the report. We count 27.01B: 1,409.6M embedding (262208 x 5376) + 25,600M. The report's "
    "1,416M embedding figure is 6.2M larger, the size of the 1152 x 5376 projection from the vision encoder "
    "into the embedding space, which is not part of this decoder"))
def gemma_3_27b() -> ModelConfig:
    # text_config: rope_scaling {rope_type linear, factor 8.0}, and no original_max_position_embeddings.
    # HF's linear RoPE only divides the frequencies by the factor and never reads it; where config.json
    # names none, the reader (as HF's rope utilities) takes max_position_embeddings (131072, the
    # Gemma3TextConfig default the text_config leaves in place), so the preset says the same.
    return gemma3_config(
        "gemma-3-27b", "huggingface.co/google/gemma-3-27b-pt/blob/main/config.json (text_config)",
        vocab_size=262208, d_model=5376, n_layers=62, n_heads=32, n_kv_heads=16, head_dim=128,
        ffn_hidden=21504, window=1024, query_pre_attn_scalar=168, max_seq_len=131072,
        scaling=RopeScaling("linear", factor=8.0, original_max_seq_len=131072),
    )
