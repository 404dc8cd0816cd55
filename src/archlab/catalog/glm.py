"""GLM-4.5 (Zhipu AI / Z.ai, 2025; HF model_type glm4_moe): a deep, narrow MoE transformer.
Compared with DeepSeek-V3 it keeps grouped-query attention (96 query heads of 128 dims, 8
key/value heads; more heads than width, 96 x 128 > 5120) instead of MLA, adds biases to the
q/k/v projections and a per-head RMSNorm on queries and keys (use_qk_norm), and rotates only
the first half of each head (partial_rotary_factor 0.5, theta 1M). The MoE is V3's: 160
routed experts, top-8, one shared expert, sigmoid scores with a selection-only correction
bias, renormalised and scaled by routed_scaling_factor 2.5, no group limit (n_group 1);
the first three layers are dense.

GLM-4.5's multi-token-prediction layer (num_nextn_predict_layers 1, stored as layer 92) is
not part of this preset: 352.8B without it. The layer adds about 4B, and the published 355B
presumably counts it.

Numbers: config.json of zai-org/GLM-4.5 on the Hugging Face hub; sizes from the GLM-4.5
technical report (arXiv:2508.06471).
"""

from ..model_config import AttentionConfig, FFNConfig, ModelConfig, MoEConfig, NormConfig, Pattern, RopeConfig, RouterConfig
from . import Published, preset


@preset("glm-4.5", Published(
    "355B", "GLM-4.5 technical report (arXiv:2508.06471) abstract: 355B total parameters, 32B activated",
    active="32B", active_convention="no_embeddings",
    note="the published total presumably includes the multi-token-prediction layer (about 4B), which this "
    "preset leaves out (352.8B without it). The activated count fits leaving out both the input embedding "
    "and the output head (32.08B); with the head it would be 32.86B, outside 32B's rounding"))
def glm_4_5() -> ModelConfig:
    n_layers, first_k_dense = 92, 3
    return ModelConfig(
        name="glm-4.5",
        family="glm",
        source="huggingface.co/zai-org/GLM-4.5/blob/main/config.json",
        vocab_size=151552,
        d_model=5120,
        n_layers=n_layers,
        max_seq_len=131072,
        norm=NormConfig("rmsnorm", eps=1e-5),
        position=RopeConfig(theta=1000000.0, partial=0.5),
        attention=AttentionConfig(
            n_heads=96, n_kv_heads=8, head_dim=128, qkv_bias=True, out_bias=False,
            qk_norm=NormConfig("rmsnorm", eps=1e-5), qk_norm_scope="head",
        ),
        ffn=FFNConfig(hidden=12288, kind="glu", activation="silu"),
        moe=MoEConfig(
            n_experts=160, top_k=8, hidden=1536, n_shared=1,
            router=RouterConfig(
                score="sigmoid", norm_topk=True, scale=2.5, score_bias=True,
                # n_group 1, topk_group 1: no group-limited routing (noaux_tc's top-2 group score has no groups to rank)
            ),
        ),
        ffn_types=Pattern(("moe",), first=("dense",) * first_k_dense),  # first_k_dense_replace
        tie_embeddings=False,
    )
