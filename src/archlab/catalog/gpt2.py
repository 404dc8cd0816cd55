"""GPT-2 (OpenAI, 2019): learned absolute positions, pre-LayerNorm, biased multi-head
attention, GELU MLP (d -> 4d -> d), tied input/output embeddings.

Numbers: the config.json of openai-community/gpt2, gpt2-medium, gpt2-large, gpt2-xl
on the Hugging Face hub (n_embd, n_layer, n_head, n_positions=1024, vocab_size=50257,
layer_norm_epsilon=1e-5, activation_function="gelu_new", the tanh approximation).
"""

from ..model_config import AttentionConfig, FFNConfig, ModelConfig, NormConfig
from . import Published, preset


def gpt2_config(name: str, d_model: int, n_layers: int, n_heads: int) -> ModelConfig:
    return ModelConfig(
        name=name,
        family="gpt2",
        source=f"huggingface.co/openai-community/{name}/blob/main/config.json",
        vocab_size=50257,
        d_model=d_model,
        n_layers=n_layers,
        max_seq_len=1024,
        position="learned",
        norm=NormConfig("layernorm", eps=1e-5, bias=True),
        attention=AttentionConfig(n_heads=n_heads, qkv_bias=True, out_bias=True),
        # n_inner unset: 4 x n_embd, so a change of width keeps the ratio
        ffn=FFNConfig(mult=4, kind="mlp", activation="gelu_tanh", bias=True),
        tie_embeddings=True,
    )


# OpenAI's GPT-2 paper gave 117M/345M/762M/1542M; the released checkpoints hold 124M/355M/774M/1558M
# (the paper's counts were later corrected; see the hub model cards, which list the latter).
@preset("gpt2", Published("124M", "huggingface.co/openai-community/gpt2 (model card: 124M parameters)"))
def gpt2() -> ModelConfig:
    return gpt2_config("gpt2", 768, 12, 12)


@preset("gpt2-medium", Published("355M", "huggingface.co/openai-community/gpt2-medium (model card: 355M parameters)"))
def gpt2_medium() -> ModelConfig:
    return gpt2_config("gpt2-medium", 1024, 24, 16)


@preset("gpt2-large", Published("774M", "huggingface.co/openai-community/gpt2-large (model card: 774M parameters)"))
def gpt2_large() -> ModelConfig:
    return gpt2_config("gpt2-large", 1280, 36, 20)


@preset("gpt2-xl", Published(
    "1542M", "Radford et al. 2019, Language Models are Unsupervised Multitask Learners, Table 2: 1542M",
    note="the model card rounds it to 1.5B"))
def gpt2_xl() -> ModelConfig:
    return gpt2_config("gpt2-xl", 1600, 48, 25)
