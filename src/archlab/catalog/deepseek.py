"""DeepSeek V2 and V3: multi-head latent attention (MLA) and fine-grained MoE with shared
experts, the first few layers dense.

V2 scores experts with a softmax and limits each token to its best `topk_group` device
groups by the group's highest score; V3 scores with sigmoids, adds a selection-only bias
(aux-loss-free balancing), ranks groups by the sum of their two best experts, and
renormalises the chosen weights. Both extend context with YaRN (factor 40 from 4K).
Multi-token-prediction layers (V3's layer 61) are not part of these presets.

Numbers: config.json of deepseek-ai/DeepSeek-V2, DeepSeek-V2-Lite and DeepSeek-V3 on the
Hugging Face hub; the V2 (arXiv:2405.04434) and V3 (arXiv:2412.19437) technical reports.
"""

from ..model_config import FFNConfig, MLAConfig, ModelConfig, MoEConfig, NormConfig, Pattern, RopeConfig, RopeScaling, RouterConfig
from . import Published, preset


def deepseek_config(
    name: str,
    repo: str,
    *,
    vocab_size: int,
    d_model: int,
    n_layers: int,
    n_heads: int,
    q_lora_rank: int | None,
    ffn_hidden: int,
    moe: MoEConfig,
    first_k_dense: int,
    mscale: float,
) -> ModelConfig:
    return ModelConfig(
        name=name,
        family="deepseek",
        source=f"huggingface.co/{repo}/blob/main/config.json",
        vocab_size=vocab_size,
        d_model=d_model,
        n_layers=n_layers,
        max_seq_len=163840,
        norm=NormConfig("rmsnorm", eps=1e-6),
        position=RopeConfig(
            theta=10000.0,
            scaling=RopeScaling(
                "yarn", factor=40.0, original_max_seq_len=4096, beta_fast=32.0, beta_slow=1.0,
                mscale=mscale, mscale_all_dim=mscale,
            ),
        ),
        attention=MLAConfig(
            n_heads=n_heads, q_lora_rank=q_lora_rank, kv_lora_rank=512,
            qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128,
        ),
        ffn=FFNConfig(hidden=ffn_hidden, kind="glu", activation="silu"),
        moe=moe,
        ffn_types=Pattern(("moe",), first=("dense",) * first_k_dense),  # first_k_dense_replace
    )


@preset("deepseek-v2", Published(
    "236B", "DeepSeek-V2 (arXiv:2405.04434) abstract: 236B total, 21B activated", active="21B",
    active_convention="no_embedding"))
def deepseek_v2() -> ModelConfig:
    return deepseek_config(
        "deepseek-v2", "deepseek-ai/DeepSeek-V2", vocab_size=102400, d_model=5120, n_layers=60,
        n_heads=128, q_lora_rank=1536, ffn_hidden=12288, first_k_dense=1, mscale=0.707,
        moe=MoEConfig(
            n_experts=160, top_k=6, hidden=1536, n_shared=2,
            router=RouterConfig(score="softmax", scale=16.0, n_groups=8, topk_groups=3, group_score="max"),
        ),
    )


@preset("deepseek-v2-lite", Published(
    "15.7B", "DeepSeek-V2 (arXiv:2405.04434) Appendix B: 15.7B total, 2.4B activated", active="2.4B",
    active_convention="no_embedding", active_tolerance=0.025,
    note="without the input embedding we count 2.451B, just past 2.4B's rounding edge; DeepSeek's figure "
    "apparently also leaves out something small (the 3.4M router weights would do it)"))
def deepseek_v2_lite() -> ModelConfig:
    return deepseek_config(
        "deepseek-v2-lite", "deepseek-ai/DeepSeek-V2-Lite", vocab_size=102400, d_model=2048, n_layers=27,
        n_heads=16, q_lora_rank=None, ffn_hidden=10944, first_k_dense=1, mscale=0.707,
        moe=MoEConfig(n_experts=64, top_k=6, hidden=1408, n_shared=2, router=RouterConfig(score="softmax")),
    )


@preset("deepseek-v3", Published(
    "671B", "DeepSeek-V3 (arXiv:2412.19437) abstract: 671B total, 37B activated", active="37B",
    active_convention="no_embedding",
    note="the main model; the 14B multi-token-prediction module (685B on the hub) is not counted. DeepSeek's "
    "activated counts (21B, 2.4B, 37B) all agree with leaving the input embedding out"))
def deepseek_v3() -> ModelConfig:
    return deepseek_config(
        "deepseek-v3", "deepseek-ai/DeepSeek-V3", vocab_size=129280, d_model=7168, n_layers=61,
        n_heads=128, q_lora_rank=1536, ffn_hidden=18432, first_k_dense=3, mscale=1.0,
        moe=MoEConfig(
            n_experts=256, top_k=8, hidden=2048, n_shared=1,
            router=RouterConfig(
                score="sigmoid", norm_topk=True, scale=2.5, n_groups=8, topk_groups=4,
                group_score="top2_sum", score_bias=True,
            ),
        ),
    )
