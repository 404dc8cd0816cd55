"""Kimi K2 (Moonshot AI, 2025): DeepSeek-V3's architecture, scaled for sparsity. The checkpoint
runs on HF's DeepseekV3ForCausalLM unchanged; what differs is the numbers: 384 routed
experts (V3: 256) of which 8 are chosen, one shared expert, half the attention heads (64 vs
128, to cut long-context inference cost), only the first layer dense (V3: three), no group
limit on routing (n_group 1), its own routed_scaling_factor (2.827), a 160K vocabulary, and
RoPE theta 50K extended 32x from 4K with YaRN (beta_fast = beta_slow = 1).
Kimi K2 ships no multi-token-prediction layer (num_nextn_predict_layers 0).

Numbers: config.json of moonshotai/Kimi-K2-Instruct on the Hugging Face hub (the July 2025
release; the later -0905 checkpoint extends the context to 256K with YaRN factor 64);
sizes from the Kimi K2 technical report (arXiv:2507.20534).
"""

from ..model_config import ModelConfig, MoEConfig, RopeConfig, RopeScaling, RouterConfig
from . import Published, preset
from .deepseek import deepseek_config


@preset("kimi-k2", Published(
    "1T", "Kimi K2 technical report (arXiv:2507.20534) abstract: 32 billion activated parameters and 1 trillion "
    "total parameters", active="32B", active_convention="no_embedding",
    note="'1T' is as coarse as the authors wrote it (our count is 1.026T); the 32B activated figure agrees with "
    "DeepSeek's convention (input embedding left out), which this architecture inherits"))
def kimi_k2() -> ModelConfig:
    cfg = deepseek_config(
        "kimi-k2", "moonshotai/Kimi-K2-Instruct", vocab_size=163840, d_model=7168, n_layers=61,
        n_heads=64, q_lora_rank=1536, ffn_hidden=18432, first_k_dense=1, mscale=1.0,
        moe=MoEConfig(
            n_experts=384, top_k=8, hidden=2048, n_shared=1,
            router=RouterConfig(
                score="sigmoid", norm_topk=True, scale=2.827, score_bias=True,
                # n_group 1, topk_group 1: no group-limited routing (noaux_tc's top-2 group score has no groups to rank)
            ),
        ),
    )
    # Where K2's config.json departs from DeepSeek-V3's (deepseek_config fixes V3's context and RoPE).
    return cfg.replace(
        family="kimi",
        max_seq_len=131072,
        position=RopeConfig(
            theta=50000.0,
            scaling=RopeScaling(
                "yarn", factor=32.0, original_max_seq_len=4096, beta_fast=1.0, beta_slow=1.0,
                mscale=1.0, mscale_all_dim=1.0,
            ),
        ),
    )
