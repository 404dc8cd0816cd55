"""The older variants the comparison names: GPT-1's post-norm blocks (2018), GPT-NeoX's
parallel attention + MLP with partial RoPE (2022), BLOOM's ALiBi with an embedding LayerNorm
(2022). Each is expressed through the same parts as every other preset.

GPT-1 (OpenAI, 2018; openai-community/openai-gpt): learned positions, LayerNorm after each
residual addition and none at the end, GELU (tanh approximation, as OpenAI's code and HF's
modeling_openai.py compute it) MLP of 4d, tied head, 512 tokens, 40478-token BPE vocabulary.

GPT-NeoX-20B (EleutherAI, 2022; arXiv:2204.06745): attention and MLP read the same input and
are added together (use_parallel_residual), rotary positions on the first 25% of each head
(theta 10000), LayerNorms and linears with biases, untied head, hidden_act "gelu_fast" (tanh
approximation), 2048 tokens, vocabulary padded to 50432.

BLOOM (BigScience, 2022; arXiv:2211.05100): no position embedding; ALiBi's linear biases on the
attention logits instead, a LayerNorm right after the embedding, pre-LayerNorm blocks with
biases everywhere, GELU (tanh approximation) MLP of 4d, tied head, 250880-token vocabulary
(250680 used, padded), trained on 2048-token sequences.

Numbers: the config.json of each model on the Hugging Face hub (openai-community/openai-gpt,
EleutherAI/gpt-neox-20b, bigscience/bloom); sizes as cited per preset.
"""

from ..model_config import AttentionConfig, FFNConfig, ModelConfig, NormConfig, RopeConfig
from . import Published, preset


# The GPT-1 paper states no parameter count; the GPT-2 paper sizes its smallest model "equivalent
# to the original GPT" as 117M (our count of GPT-1: 116.5M).
@preset("gpt-1", Published(
    "117M", "Radford et al. 2019, Language Models are Unsupervised Multitask Learners, Table 2 and section 3: "
    "the smallest model (117M) is equivalent to the original GPT",
    note="the GPT-1 paper (Radford et al. 2018) gives no count; this is the same authors' figure from the GPT-2 paper"))
def gpt_1() -> ModelConfig:
    return ModelConfig(
        name="gpt-1",
        family="openai_gpt",
        source="huggingface.co/openai-community/openai-gpt/blob/main/config.json",
        vocab_size=40478,
        d_model=768,
        n_layers=12,
        max_seq_len=512,
        position="learned",
        block="post",
        norm=NormConfig("layernorm", eps=1e-5, bias=True),
        attention=AttentionConfig(n_heads=12, qkv_bias=True, out_bias=True),
        ffn=FFNConfig(mult=4, kind="mlp", activation="gelu_tanh", bias=True),  # HF OpenAIGPT: 4 * n_embd
        tie_embeddings=True,
    )


@preset("gpt-neox-20b", Published(
    "20.56B", "huggingface.co/EleutherAI/gpt-neox-20b (model card: Num. parameters 20,556,201,984)",
    note="the paper (arXiv:2204.06745) rounds it to '20 billion'; our count is 20,554,567,680"))
def gpt_neox_20b() -> ModelConfig:
    return ModelConfig(
        name="gpt-neox-20b",
        family="gpt_neox",
        source="huggingface.co/EleutherAI/gpt-neox-20b/blob/main/config.json",
        vocab_size=50432,
        d_model=6144,
        n_layers=44,
        max_seq_len=2048,
        position=RopeConfig(theta=10000.0, partial=0.25),
        block="parallel",
        norm=NormConfig("layernorm", eps=1e-5, bias=True),
        attention=AttentionConfig(n_heads=64, qkv_bias=True, out_bias=True),
        ffn=FFNConfig(hidden=24576, kind="mlp", activation="gelu_tanh", bias=True),
        tie_embeddings=False,
    )


@preset("bloom-176b", Published(
    "176B", "Le Scao et al. 2022, BLOOM: A 176B-Parameter Open-Access Multilingual Language Model (arXiv:2211.05100)",
    note="the bigscience/bloom model card gives 176,247,271,424"))
def bloom_176b() -> ModelConfig:
    return ModelConfig(
        name="bloom-176b",
        family="bloom",
        source="huggingface.co/bigscience/bloom/blob/main/config.json; sequence length 2048 from its model card",
        vocab_size=250880,
        d_model=14336,
        n_layers=70,
        max_seq_len=2048,
        position="alibi",
        norm=NormConfig("layernorm", eps=1e-5, bias=True),
        embed_norm=True,
        attention=AttentionConfig(n_heads=112, qkv_bias=True, out_bias=True),
        ffn=FFNConfig(mult=4, kind="mlp", activation="gelu_tanh", bias=True),  # HF BloomMLP: 4 * hidden_size
        tie_embeddings=True,
    )
