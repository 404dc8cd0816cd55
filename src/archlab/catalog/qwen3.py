"""Qwen3 (Alibaba, 2025), dense and MoE: the LLaMA block with grouped-query attention and no
QKV bias (Qwen2 had one), plus QK-norm: an RMSNorm over each head's query and key (one
weight of head_dim shared by all heads) before RoPE. head_dim is 128 at every size, so it
is independent of d_model (0.6B: 16 x 128 = 2048 > d_model 1024). The dense models up to 4B
tie the head to the embedding; 8B and larger, and the MoE models, do not (Qwen3 technical
report, arXiv:2505.09388, Table 1).

The MoE models (Qwen3MoE) put 128 SwiGLU experts in every layer (decoder_sparse_step 1,
mlp_only_layers []), 8 per token, with no shared expert: softmax over all 128 router
logits, keep the top 8, renormalise them (norm_topk_prob true), as HF `Qwen3MoeTopKRouter`.
Their config's `intermediate_size` describes a dense FFN that no layer uses.

Numbers: config.json of Qwen/Qwen3-0.6B, 1.7B, 4B, 8B, 14B, 32B, Qwen3-30B-A3B and
Qwen3-235B-A22B on the Hugging Face hub (max_position_embeddings 40960, rope_theta 1e6, rms_norm_eps 1e-6,
vocab_size 151936, rope_scaling null); sizes from the same repositories' model cards.
"""

from ..model_config import AttentionConfig, FFNConfig, ModelConfig, MoEConfig, NormConfig, RopeConfig, RouterConfig
from . import Published, preset


def qwen3_config(
    name: str,
    repo: str,
    *,
    d_model: int,
    n_layers: int,
    n_heads: int,
    n_kv_heads: int,
    ffn_hidden: int,
    tie_embeddings: bool,
    moe: MoEConfig | None = None,
) -> ModelConfig:
    return ModelConfig(
        name=name,
        family="qwen3",
        source=f"huggingface.co/{repo}/blob/main/config.json",
        vocab_size=151936,
        d_model=d_model,
        n_layers=n_layers,
        max_seq_len=40960,
        norm=NormConfig("rmsnorm", eps=1e-6),
        position=RopeConfig(theta=1e6),
        attention=AttentionConfig(
            n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=128,
            qk_norm=NormConfig("rmsnorm", eps=1e-6), qk_norm_scope="head",
        ),
        # With experts every layer is MoE (decoder_sparse_step 1): intermediate_size is then unused.
        ffn=FFNConfig(hidden=ffn_hidden, kind="glu", activation="silu") if moe is None else None,
        moe=moe,
        tie_embeddings=tie_embeddings,
    )


def qwen3_moe(hidden: int) -> MoEConfig:
    return MoEConfig(
        n_experts=128, top_k=8, hidden=hidden, n_shared=0, activation="silu",
        router=RouterConfig(score="softmax", norm_topk=True),
    )


@preset("qwen3-0.6b", Published(
    "0.6B", "huggingface.co/Qwen/Qwen3-0.6B (model card: Number of Parameters 0.6B, Non-Embedding 0.44B)"))
def qwen3_0_6b() -> ModelConfig:
    return qwen3_config(
        "qwen3-0.6b", "Qwen/Qwen3-0.6B", d_model=1024, n_layers=28, n_heads=16, n_kv_heads=8,
        ffn_hidden=3072, tie_embeddings=True,
    )


@preset("qwen3-1.7b", Published(
    "1.7B", "huggingface.co/Qwen/Qwen3-1.7B (model card: Number of Parameters 1.7B, Non-Embedding 1.4B)"))
def qwen3_1_7b() -> ModelConfig:
    return qwen3_config(
        "qwen3-1.7b", "Qwen/Qwen3-1.7B", d_model=2048, n_layers=28, n_heads=16, n_kv_heads=8,
        ffn_hidden=6144, tie_embeddings=True,
    )


@preset("qwen3-4b", Published(
    "4.0B", "huggingface.co/Qwen/Qwen3-4B (model card: Number of Parameters 4.0B, Non-Embedding 3.6B)"))
def qwen3_4b() -> ModelConfig:
    return qwen3_config(
        "qwen3-4b", "Qwen/Qwen3-4B", d_model=2560, n_layers=36, n_heads=32, n_kv_heads=8,
        ffn_hidden=9728, tie_embeddings=True,
    )


@preset("qwen3-8b", Published(
    "8.2B", "huggingface.co/Qwen/Qwen3-8B (model card: Number of Parameters 8.2B, Non-Embedding 6.95B)"))
def qwen3_8b() -> ModelConfig:
    return qwen3_config(
        "qwen3-8b", "Qwen/Qwen3-8B", d_model=4096, n_layers=36, n_heads=32, n_kv_heads=8,
        ffn_hidden=12288, tie_embeddings=False,
    )


@preset("qwen3-14b", Published(
    "14.8B", "huggingface.co/Qwen/Qwen3-14B (model card: Number of Parameters 14.8B, Non-Embedding 13.2B)"))
def qwen3_14b() -> ModelConfig:
    return qwen3_config(
        "qwen3-14b", "Qwen/Qwen3-14B", d_model=5120, n_layers=40, n_heads=40, n_kv_heads=8,
        ffn_hidden=17408, tie_embeddings=False,
    )


@preset("qwen3-32b", Published(
    "32.8B", "huggingface.co/Qwen/Qwen3-32B (model card: Number of Parameters 32.8B, Non-Embedding 31.2B)"))
def qwen3_32b() -> ModelConfig:
    # 64 query heads of 128 (8192) on a width of 5120
    return qwen3_config(
        "qwen3-32b", "Qwen/Qwen3-32B", d_model=5120, n_layers=64, n_heads=64, n_kv_heads=8,
        ffn_hidden=25600, tie_embeddings=False,
    )


@preset("qwen3-30b-a3b", Published(
    "30.5B", "huggingface.co/Qwen/Qwen3-30B-A3B (model card: 30.5B in total and 3.3B activated, "
    "Non-Embedding 29.9B)", active="3.3B", active_convention="all",
    note="counting the embedding row and the untied head we get 3.353B (1.6% above 3.3B, within 2%); without "
    "the input embedding it would be 3.04B, so Qwen's figure counts the embeddings"))
def qwen3_30b_a3b() -> ModelConfig:
    # config.json: intermediate_size 6144 (unused: every layer is MoE), moe_intermediate_size 768.
    return qwen3_config(
        "qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B", d_model=2048, n_layers=48, n_heads=32, n_kv_heads=4,
        ffn_hidden=6144, tie_embeddings=False, moe=qwen3_moe(768),
    )


@preset("qwen3-235b-a22b", Published(
    "235B", "huggingface.co/Qwen/Qwen3-235B-A22B (model card: 235B in total and 22B activated, "
    "Non-Embedding 234B)", active="22B", active_convention="all",
    note="22B matches counting the embedding row and the untied head (22.2B); without the input "
    "embedding it would be 21.6B, also within 22B's rounding"))
def qwen3_235b_a22b() -> ModelConfig:
    # config.json: intermediate_size 12288 (unused: every layer is MoE), moe_intermediate_size 1536.
    return qwen3_config(
        "qwen3-235b-a22b", "Qwen/Qwen3-235B-A22B", d_model=4096, n_layers=94, n_heads=64, n_kv_heads=4,
        ffn_hidden=12288, tie_embeddings=False, moe=qwen3_moe(1536),
    )
