"""Qwen2 and Qwen2.5 (Alibaba, 2024), dense and MoE: the LLaMA block (RMSNorm, RoPE with theta
1e6, SwiGLU) with grouped-query attention and biases on the query, key and value projections
(none on the output projection), which Qwen3 later dropped for QK-norm. The released configs
set use_sliding_window false, so every layer attends globally; the 7B and larger models do
not tie the head to the embedding.

Qwen2-57B-A14B (Qwen2MoE) puts a mixture of experts in every layer (decoder_sparse_step 1, no
mlp_only_layers): 64 SwiGLU experts of 2560, 8 per token, chosen by a softmax over all 64
router logits and not renormalised (norm_topk_prob false), plus one always-on shared SwiGLU of
20480 (8 expert widths) whose output is scaled by sigmoid(w . x), a learned per-token gate
(Qwen2MoeSparseMoeBlock.shared_expert_gate). Its `intermediate_size` (18944) describes a dense
FFN that no layer uses. Qwen1.5-MoE-A2.7B, the first Qwen2MoE release, is the same design at
2.7B active: 60 experts of 1408, 4 per token, a shared expert of 5632, multi-head attention.

Numbers: the config.json of each model on the Hugging Face hub, as cited per preset; sizes
from the model cards and the Qwen2 technical report (arXiv:2407.10671).
"""

from ..model_config import AttentionConfig, FFNConfig, ModelConfig, MoEConfig, NormConfig, RopeConfig, RouterConfig
from . import Published, preset


def qwen2_config(
    name: str,
    source: str,
    *,
    vocab_size: int,
    d_model: int,
    n_layers: int,
    n_heads: int,
    n_kv_heads: int,
    ffn_hidden: int,
    eps: float,
    max_seq_len: int = 131072,
    moe: MoEConfig | None = None,
) -> ModelConfig:
    return ModelConfig(
        name=name,
        family="qwen2",
        source=source,
        vocab_size=vocab_size,
        d_model=d_model,
        n_layers=n_layers,
        max_seq_len=max_seq_len,
        norm=NormConfig("rmsnorm", eps=eps),
        position=RopeConfig(theta=1e6),
        attention=AttentionConfig(n_heads=n_heads, n_kv_heads=n_kv_heads, qkv_bias=True, out_bias=False),
        # With experts in every layer (decoder_sparse_step 1) intermediate_size is unused.
        ffn=FFNConfig(hidden=ffn_hidden, kind="glu", activation="silu") if moe is None else None,
        moe=moe,
        tie_embeddings=False,
    )


@preset("qwen2.5-7b", Published(
    "7.61B", "huggingface.co/Qwen/Qwen2.5-7B (model card: Number of Parameters 7.61B, Non-Embedding 6.53B)"))
def qwen2_5_7b() -> ModelConfig:
    # config.json: vocab_size 152064 (151646 tokens used, padded), rms_norm_eps 1e-6,
    # max_position_embeddings 131072, use_sliding_window false.
    return qwen2_config(
        "qwen2.5-7b", "huggingface.co/Qwen/Qwen2.5-7B/blob/main/config.json", vocab_size=152064, d_model=3584,
        n_layers=28, n_heads=28, n_kv_heads=4, ffn_hidden=18944, eps=1e-6,
    )


@preset("qwen2.5-72b", Published(
    "72.7B", "huggingface.co/Qwen/Qwen2.5-72B (model card: Number of Parameters 72.7B)"))
def qwen2_5_72b() -> ModelConfig:
    # We found no verbatim public copy of this config.json; the numbers are those litgpt copies
    # from it (github.com/Lightning-AI/litgpt, litgpt/config.py, "Qwen2.5-72B": 80 layers, 64
    # heads, 8 query groups, n_embd 8192, intermediate 29568, norm_eps 1e-5, block 131072,
    # padded vocab 152064, rope_base 1e6), the same as Qwen2-72B's published config.json.
    return qwen2_config(
        "qwen2.5-72b", "huggingface.co/Qwen/Qwen2.5-72B/blob/main/config.json (via litgpt/config.py)",
        vocab_size=152064, d_model=8192, n_layers=80, n_heads=64, n_kv_heads=8, ffn_hidden=29568, eps=1e-5,
    )


@preset("qwen2-57b-a14b", Published(
    "57B", "Yang et al. 2024, Qwen2 Technical Report (arXiv:2407.10671), Table 1: Qwen2-57B-A14B, 57B parameters "
    "with 14B activated", active="14B", active_convention="all",
    note="counting the input embedding and the untied head we get 14.25B active (without the input embedding "
    "13.70B, also within 14B's rounding); 57.41B in total"))
def qwen2_57b_a14b() -> ModelConfig:
    # config.json: num_experts 64, num_experts_per_tok 8, moe_intermediate_size 2560,
    # shared_expert_intermediate_size 20480, norm_topk_prob false, decoder_sparse_step 1,
    # vocab_size 151936, rms_norm_eps 1e-6, max_position_embeddings 131072.
    return qwen2_config(
        "qwen2-57b-a14b", "huggingface.co/Qwen/Qwen2-57B-A14B/blob/main/config.json", vocab_size=151936,
        d_model=3584, n_layers=28, n_heads=28, n_kv_heads=4, ffn_hidden=18944, eps=1e-6,
        moe=MoEConfig(n_experts=64, top_k=8, hidden=2560, n_shared=8, shared_gate=True, activation="silu",
                      router=RouterConfig(score="softmax", norm_topk=False)),
    )


@preset("qwen1.5-moe-a2.7b", Published(
    "14.3B", "huggingface.co/Qwen/Qwen1.5-MoE-A2.7B (model card: 14.3B parameters in total and 2.7B activated "
    "parameters during runtime)", active="2.7B", active_convention="all",
    note="counting the input embedding and the untied head we get 2.69B active (without both, 2.07B); 14.32B "
    "in total"))
def qwen1_5_moe_a2_7b() -> ModelConfig:
    # Qwen2MoE's first release: 60 experts of 1408, 4 per token, not renormalised, beside a gated
    # shared expert of 5632 (4 expert widths); multi-head attention (16 kv heads). config.json of
    # Qwen/Qwen1.5-MoE-A2.7B-Chat (the same architecture), as copied field by field in public
    # planners: hidden_size 2048, num_hidden_layers 24, num_attention_heads 16, num_key_value_heads 16,
    # num_experts 60, num_experts_per_tok 4, moe_intermediate_size 1408,
    # shared_expert_intermediate_size 5632, vocab_size 151936, max_position_embeddings 32768,
    # rms_norm_eps 1e-6, rope_theta 1e6, tie_word_embeddings false. Its class defaults
    # (Qwen2MoeConfig) are these numbers too.
    return qwen2_config(
        "qwen1.5-moe-a2.7b", "huggingface.co/Qwen/Qwen1.5-MoE-A2.7B-Chat/blob/main/config.json", vocab_size=151936,
        d_model=2048, n_layers=24, n_heads=16, n_kv_heads=16, ffn_hidden=5632, eps=1e-6, max_seq_len=32768,
        moe=MoEConfig(n_experts=60, top_k=4, hidden=1408, n_shared=4, shared_gate=True, activation="silu",
                      router=RouterConfig(score="softmax", norm_topk=False)),
    )
