"""SmolLM (Hugging Face): small open models.

SmolLM2-135M is the LLaMA architecture at small scale: 30 layers of width 576, grouped-query
attention (9 heads, 3 kv heads, head_dim 64), RoPE theta 100K, a 49K vocabulary and a tied
head. It is the base of SmolLM2-135M-Instruct, the GGUF that archlab loads.

SmolLM3-3B is also LLaMA-shaped (GQA 16 heads / 4 kv heads, tied head, 128K Llama 3
vocabulary) but drops RoPE from every 4th layer (NoPE). HF `SmolLM3Config` takes the
per-layer list `no_rope_layers` from config.json (1 = this layer uses RoPE, 0 = NoPE; when
absent it is built as int((i + 1) % no_rope_layer_interval != 0)), and `SmolLM3Attention`
rotates only where `config.no_rope_layers[layer_idx]` is 1. The released list is
[1, 1, 1, 0] * 9: layers 3, 7, 11, ..., 35 (0-based) are NoPE. Its config.json has no
`tie_word_embeddings`, so `SmolLM3Config`'s default (True) applies; use_sliding_window is false.

Numbers: config.json of HuggingFaceTB/SmolLM2-135M (cross-checked with the header of the
SmolLM2-135M-Instruct GGUF: block_count 30, embedding_length 576, feed_forward_length 1536,
head_count 9, head_count_kv 3, context_length 8192, rope.freq_base 100000, no output.weight
tensor, i.e. tied) and of HuggingFaceTB/SmolLM3-3B on the Hugging Face hub.
"""

from ..model_config import AttentionConfig, FFNConfig, ModelConfig, NormConfig, Pattern, RopeConfig
from . import Published, preset


def nope_every(interval: int) -> Pattern:
    """SmolLM3's `no_rope_layers` as booleans: True (RoPE) unless (i + 1) is a multiple of interval."""
    return Pattern.every(interval, False, True)


@preset("smollm2-135m", Published(
    "135M", "Allal et al. 2025, SmolLM2 (arXiv:2502.02737), and the HuggingFaceTB/SmolLM2-135M model card: 135M"))
def smollm2_135m() -> ModelConfig:
    return ModelConfig(
        name="smollm2-135m",
        family="smollm",
        source="huggingface.co/HuggingFaceTB/SmolLM2-135M/blob/main/config.json",
        vocab_size=49152,
        d_model=576,
        n_layers=30,
        max_seq_len=8192,
        norm=NormConfig("rmsnorm", eps=1e-5),
        position=RopeConfig(theta=100000.0),
        attention=AttentionConfig(n_heads=9, n_kv_heads=3),
        ffn=FFNConfig(hidden=1536, kind="glu", activation="silu"),
        tie_embeddings=True,
    )


@preset("smollm3-3b", Published(
    "3B", "Hugging Face, SmolLM3: smol, multilingual, long-context reasoner (huggingface.co/blog/smollm3), and "
    "the HuggingFaceTB/SmolLM3-3B model card: a 3B parameter language model",
    note="we count 3.075B with the head tied to the embedding"))
def smollm3_3b() -> ModelConfig:
    # config.json: no_rope_layer_interval 4 and the explicit no_rope_layers list it produces.
    return ModelConfig(
        name="smollm3-3b",
        family="smollm",
        source="huggingface.co/HuggingFaceTB/SmolLM3-3B/blob/main/config.json",
        vocab_size=128256,
        d_model=2048,
        n_layers=36,
        max_seq_len=65536,
        norm=NormConfig("rmsnorm", eps=1e-6),
        position=RopeConfig(theta=5e6),
        attention=AttentionConfig(n_heads=16, n_kv_heads=4),
        ffn=FFNConfig(hidden=11008, kind="glu", activation="silu"),
        tie_embeddings=True,
        rope_layers=nope_every(4),
    )
