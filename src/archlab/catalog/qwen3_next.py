"""Qwen3-Next (Alibaba Qwen, 2025): a hybrid of linear and softmax attention with an
ultra-sparse MoE. Three of every four layers are Gated DeltaNet linear attention (a
fixed-size per-head state updated by the gated delta rule, after a short causal
convolution; 16 key heads and 32 value heads of 128 dims); every fourth layer is gated
full attention: grouped-query attention (16 query heads, 2 key/value heads, 256-dim heads)
with a per-head QK-norm, RoPE on only the first quarter of each head (rope_theta 1e7), and the
output multiplied by sigmoid of a second query-sized projection (output_gate).

Every RMSNorm (block, final and QK norms) is zero-centred: the scale is (1 + w) with w
initialised to 0 (unit_offset). Every layer is MoE: 512 experts of 512, top-10 from a
softmax, renormalised, plus one always-on shared expert of 512 whose output is scaled by
sigmoid(w . x) (shared_gate).

Qwen3-Next's multi-token-prediction layer (shipped as mtp.* weights) is not part of this
preset.

Numbers: config.json of Qwen/Qwen3-Next-80B-A3B-Instruct on the Hugging Face hub
(layer_types: "linear_attention" unless (i + 1) % full_attention_interval == 0, the rule of
HF's Qwen3NextConfig; shared_expert_intermediate_size 512 equals moe_intermediate_size, so
the shared GLU is n_shared * hidden as our schema stores it); sizes from the model card.
"""

from ..model_config import (
    AttentionConfig,
    DeltaNetConfig,
    ModelConfig,
    MoEConfig,
    NormConfig,
    Pattern,
    RopeConfig,
    RouterConfig,
)
from . import Published, preset


def hybrid_layer_types(full_attention_interval: int) -> Pattern:
    """HF Qwen3NextConfig: "linear_attention" when (i + 1) % full_attention_interval, else "full_attention"."""
    return Pattern.every(full_attention_interval, "global", "linear")


@preset("qwen3-next-80b-a3b", Published(
    "80B", "Qwen3-Next-80B-A3B model card (huggingface.co/Qwen/Qwen3-Next-80B-A3B-Instruct): 80B in total and "
    "3B activated; Number of Parameters (Non-Embedding): 79B", active="3B", active_convention="no_embeddings",
    note="the card counts non-embedding parameters without the input embedding and the output head (79B; ours "
    "79.05B); its activated 3B fits that convention (ours 3.25B, 3.56B with the head). The multi-token-prediction "
    "layer is left out here"))
def qwen3_next_80b_a3b() -> ModelConfig:
    n_layers = 48
    norm = NormConfig("rmsnorm", eps=1e-6, unit_offset=True)
    return ModelConfig(
        name="qwen3-next-80b-a3b",
        family="qwen",
        source="huggingface.co/Qwen/Qwen3-Next-80B-A3B-Instruct/blob/main/config.json",
        vocab_size=151936,
        d_model=2048,
        n_layers=n_layers,
        max_seq_len=262144,
        norm=norm,
        position=RopeConfig(theta=10000000.0, partial=0.25),  # config.json: rope_theta 10000000, partial_rotary_factor 0.25
        attention=AttentionConfig(
            n_heads=16, n_kv_heads=2, head_dim=256, qk_norm=norm, qk_norm_scope="head", output_gate=True,
        ),
        linear_attention=DeltaNetConfig(n_k_heads=16, n_v_heads=32, k_head_dim=128, v_head_dim=128, conv_kernel=4),
        # No dense FFN: every layer is MoE (decoder_sparse_step 1, mlp_only_layers []).
        moe=MoEConfig(
            n_experts=512, top_k=10, hidden=512, n_shared=1, shared_gate=True,
            router=RouterConfig(score="softmax", norm_topk=True),
        ),
        layer_types=hybrid_layer_types(full_attention_interval=4),
        tie_embeddings=False,
    )
