"""GPT-OSS (OpenAI, 2025): a pre-norm MoE transformer that alternates banded (sliding, 128
tokens) and dense attention layer by layer, with a learned "sink" logit per head in every
softmax, biases on q/k/v/o, grouped-query attention with 64-dim heads, and an untied head.

The experts are a clamped SwiGLU, (up + 1) * gate * sigmoid(1.702 gate) with gate <= 7 and
|up| <= 7, with biases; the router is a linear layer with a bias, whose top-4 logits are
softmaxed (the same as softmax over all, top-4, renormalised). RoPE (theta 150K) is extended
32x from 4K with YaRN without truncating the correction range (truncate=False).

Numbers: config.json of openai/gpt-oss-20b and openai/gpt-oss-120b on the Hugging Face hub
(layer_types: "sliding_attention" at even layers, "full_attention" at odd ones, the rule of
HF's GptOssConfig); sizes from the gpt-oss-120b & gpt-oss-20b model card (arXiv:2508.10925).
"""

from ..model_config import (
    AttentionConfig,
    ModelConfig,
    MoEConfig,
    NormConfig,
    Pattern,
    RopeConfig,
    RopeScaling,
    RouterConfig,
)
from . import Published, preset


# HF GptOssConfig: layer i is "sliding_attention" when (i + 1) % 2, else "full_attention".
ALTERNATING = Pattern(("sliding", "global"))


def gpt_oss_config(name: str, repo: str, *, n_layers: int, n_experts: int) -> ModelConfig:
    return ModelConfig(
        name=name,
        family="gpt-oss",
        source=f"huggingface.co/{repo}/blob/main/config.json",
        vocab_size=201088,
        d_model=2880,
        n_layers=n_layers,
        max_seq_len=131072,
        norm=NormConfig("rmsnorm", eps=1e-5),
        position=RopeConfig(
            theta=150000.0,
            scaling=RopeScaling(
                "yarn", factor=32.0, original_max_seq_len=4096, beta_fast=32.0, beta_slow=1.0, truncate=False,
            ),
        ),
        attention=AttentionConfig(
            n_heads=64, n_kv_heads=8, head_dim=64, qkv_bias=True, out_bias=True, window=128, sinks=True,
        ),
        moe=MoEConfig(
            n_experts=n_experts, top_k=4, hidden=2880, activation="silu",
            router=RouterConfig(score="softmax", norm_topk=True, logit_bias=True),
            bias=True, swiglu_limit=7.0,
        ),
        layer_types=ALTERNATING,
        tie_embeddings=False,
    )


_CARD = "gpt-oss-120b & gpt-oss-20b model card (arXiv:2508.10925) section 2.1 and Table 1"
_NOTE = ("the model card's active count includes the unembedding but not the input embedding (it is a "
         "lookup); ours under that convention is within rounding of its Table 1 figure")


@preset("gpt-oss-20b", Published(
    "20.91B", f"{_CARD}: 20.91B total, 3.61B active", active="3.61B",
    active_convention="no_embedding", note=_NOTE))
def gpt_oss_20b() -> ModelConfig:
    return gpt_oss_config("gpt-oss-20b", "openai/gpt-oss-20b", n_layers=24, n_experts=32)


@preset("gpt-oss-120b", Published(
    "116.83B", f"{_CARD}: 116.83B total, 5.13B active", active="5.13B",
    active_convention="no_embedding", note=_NOTE))
def gpt_oss_120b() -> ModelConfig:
    return gpt_oss_config("gpt-oss-120b", "openai/gpt-oss-120b", n_layers=36, n_experts=128)
