"""LLaMA 2 and 3 (Meta): RMSNorm, RoPE, grouped-query attention, SwiGLU, untied head.
Llama 2 7B is still multi-head (32 kv heads); Llama 3 uses 8 kv heads at every size and a
128K vocabulary; Llama 3.1 adds "llama3" RoPE frequency scaling for 128K context.

Numbers: config.json of meta-llama/Llama-2-7b-hf, Meta-Llama-3-8B, Meta-Llama-3-70B and
Llama-3.1-405B on the Hugging Face hub.
"""

from ..model_config import AttentionConfig, FFNConfig, ModelConfig, NormConfig, RopeConfig, RopeScaling
from . import Published, preset


def llama_config(
    name: str,
    repo: str,
    *,
    vocab_size: int,
    d_model: int,
    n_layers: int,
    n_heads: int,
    n_kv_heads: int,
    ffn_hidden: int,
    max_seq_len: int,
    theta: float,
    scaling: RopeScaling | None = None,
) -> ModelConfig:
    return ModelConfig(
        name=name,
        family="llama",
        source=f"huggingface.co/{repo}/blob/main/config.json",
        vocab_size=vocab_size,
        d_model=d_model,
        n_layers=n_layers,
        max_seq_len=max_seq_len,
        norm=NormConfig("rmsnorm", eps=1e-5),
        position=RopeConfig(theta=theta, scaling=scaling),
        attention=AttentionConfig(n_heads=n_heads, n_kv_heads=n_kv_heads),
        ffn=FFNConfig(hidden=ffn_hidden, kind="glu", activation="silu"),
    )


@preset("llama-2-7b", Published(
    "6.7B", "Touvron et al. 2023, LLaMA (arXiv:2302.13971) Table 2: 6.7B",
    note="Llama 2 7B keeps LLaMA-7B's shape; the Llama 2 paper rounds it to 7B"))
def llama_2_7b() -> ModelConfig:
    return llama_config(
        "llama-2-7b", "meta-llama/Llama-2-7b-hf", vocab_size=32000, d_model=4096, n_layers=32,
        n_heads=32, n_kv_heads=32, ffn_hidden=11008, max_seq_len=4096, theta=10000.0,
    )


@preset("llama-3-8b", Published("8B", "Meta, Llama 3 model card (github.com/meta-llama/llama3): 8B"))
def llama_3_8b() -> ModelConfig:
    return llama_config(
        "llama-3-8b", "meta-llama/Meta-Llama-3-8B", vocab_size=128256, d_model=4096, n_layers=32,
        n_heads=32, n_kv_heads=8, ffn_hidden=14336, max_seq_len=8192, theta=500000.0,
    )


@preset("llama-3-70b", Published("70.6B", "Meta, Llama 3.1 model card (github.com/meta-llama/llama-models): 70.6B"))
def llama_3_70b() -> ModelConfig:
    return llama_config(
        "llama-3-70b", "meta-llama/Meta-Llama-3-70B", vocab_size=128256, d_model=8192, n_layers=80,
        n_heads=64, n_kv_heads=8, ffn_hidden=28672, max_seq_len=8192, theta=500000.0,
    )


@preset("llama-3.1-405b", Published("405B", "Meta, The Llama 3 Herd of Models (arXiv:2407.21783) Table 3: 405B"))
def llama_3_1_405b() -> ModelConfig:
    return llama_config(
        "llama-3.1-405b", "meta-llama/Llama-3.1-405B", vocab_size=128256, d_model=16384, n_layers=126,
        n_heads=128, n_kv_heads=8, ffn_hidden=53248, max_seq_len=131072, theta=500000.0,
        scaling=RopeScaling("llama3", factor=8.0, original_max_seq_len=8192, low_freq_factor=1.0, high_freq_factor=4.0),
    )
