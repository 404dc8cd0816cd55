"""Mistral 7B and Mixtral 8x7B (Mistral AI): the LLaMA block (RMSNorm, RoPE, SwiGLU, untied
head) with grouped-query attention (8 kv heads) and a 32K-token vocabulary.

# diff with LLaMA
- Mistral 7B v0.1 attends through a sliding window of 4096 tokens in every layer (HF
  `MistralConfig.sliding_window`; a query sees itself and the 4095 tokens before it).
- Mixtral 8x7B v0.1 replaces every FFN by 8 SwiGLU experts of Mistral 7B's width, two per
  token: softmax over the 8 router logits, keep the top 2, renormalise them to sum to 1 (HF
  `MixtralTopKRouter`). Its released config has `sliding_window: null`, so every layer is
  global attention; RoPE theta rises to 1e6.

Numbers: config.json of mistralai/Mistral-7B-v0.1 and mistralai/Mixtral-8x7B-v0.1 on the
Hugging Face hub; sizes from Mistral AI's release posts.
"""

from ..model_config import AttentionConfig, FFNConfig, ModelConfig, MoEConfig, NormConfig, Pattern, RopeConfig, RouterConfig
from . import Published, preset

N_LAYERS = 32


def mistral_config(name: str, repo: str, *, theta: float, layer_types: Pattern | None,
                   window: int | None = None, moe: MoEConfig | None = None) -> ModelConfig:
    return ModelConfig(
        name=name,
        family="mistral",
        source=f"huggingface.co/{repo}/blob/main/config.json",
        vocab_size=32000,
        d_model=4096,
        n_layers=N_LAYERS,
        max_seq_len=32768,
        norm=NormConfig("rmsnorm", eps=1e-5),
        position=RopeConfig(theta=theta),
        attention=AttentionConfig(n_heads=32, n_kv_heads=8, window=window),
        # Mixtral's `intermediate_size` (14336) is each expert's width; no layer is dense.
        ffn=FFNConfig(hidden=14336, kind="glu", activation="silu") if moe is None else None,
        moe=moe,
        layer_types=layer_types,
    )


@preset("mistral-7b", Published(
    "7.3B", "Mistral AI, Announcing Mistral 7B (mistral.ai/news/announcing-mistral-7b): "
    "\"Mistral 7B is a 7.3B parameter model\""))
def mistral_7b() -> ModelConfig:
    # config.json: sliding_window 4096, rope_theta 10000.0; HF applies the window to every layer.
    return mistral_config(
        "mistral-7b", "mistralai/Mistral-7B-v0.1", theta=10000.0,
        layer_types=Pattern(("sliding",)), window=4096,
    )


@preset("mixtral-8x7b", Published(
    "46.7B", "Mistral AI, Mixtral of experts (mistral.ai/news/mixtral-of-experts): \"46.7B total "
    "parameters but only uses 12.9B parameters per token\"", active="12.9B", active_convention="all",
    note="the paper (arXiv:2401.04088) rounds the same counts to 47B and 13B; counting the embedding row and "
    "the head we get 12.88B, which rounds to 12.9B (leaving the input embedding out gives 12.75B)"))
def mixtral_8x7b() -> ModelConfig:
    # config.json: num_local_experts 8, num_experts_per_tok 2, rope_theta 1e6, sliding_window null.
    return mistral_config(
        "mixtral-8x7b", "mistralai/Mixtral-8x7B-v0.1", theta=1e6,
        layer_types=None,
        moe=MoEConfig(n_experts=8, top_k=2, hidden=14336, activation="silu",
                      router=RouterConfig(score="softmax", norm_topk=True)),
    )


# Mistral Small 3.1 (March 2025): the same block at 24B, with grouped-query attention whose
# heads (32 x 128 = 4096) are narrower than the width (5120), no sliding window, RoPE theta
# 1e9 for its 128K context, and the 131072-token Tekken vocabulary. The released checkpoint is
# Mistral3ForConditionalGeneration (a Pixtral vision encoder beside the text model); this preset
# is its text model, `text_config` (model_type "mistral"), which archlab's mistral reader loads.
@preset("mistral-small-3.1-24b", Published(
    "24B", "Mistral AI, Mistral Small 3.1 (mistral.ai/news/mistral-small-3-1): \"With 24 billion parameters\"",
    note="the figure covers the whole multimodal checkpoint; the text model alone is 23.57B by our count, 1.8% "
    "below it (the Pixtral vision encoder and its projector make up most of the rest)"))
def mistral_small_3_1_24b() -> ModelConfig:
    # text_config of mistralai/Mistral-Small-3.1-24B-Base-2503's config.json: num_hidden_layers 40,
    # hidden_size 5120, num_attention_heads 32, num_key_value_heads 8, head_dim 128,
    # intermediate_size 32768, vocab_size 131072, rope_theta 1e9, rms_norm_eps 1e-5,
    # max_position_embeddings 131072, sliding_window null. Checked against the verbatim copy of
    # the same text_config (Mistral Small 3.2, whose base model is 3.1's) that FLUX.2-dev ships
    # as its text encoder, as copied in github.com/aigc-apps/VideoX-Fun (ComfyUI FLUX.2 loader).
    return ModelConfig(
        name="mistral-small-3.1-24b",
        family="mistral",
        source="huggingface.co/mistralai/Mistral-Small-3.1-24B-Base-2503/blob/main/config.json (text_config)",
        vocab_size=131072,
        d_model=5120,
        n_layers=40,
        max_seq_len=131072,
        norm=NormConfig("rmsnorm", eps=1e-5),
        position=RopeConfig(theta=1e9),
        attention=AttentionConfig(n_heads=32, n_kv_heads=8, head_dim=128),
        ffn=FFNConfig(hidden=32768, kind="glu", activation="silu"),
    )
