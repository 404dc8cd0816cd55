"""GPT-3 (OpenAI; Brown et al. 2020, Language Models are Few-Shot Learners, arXiv:2005.14165).

NOT VERIFIED AGAINST A REFERENCE IMPLEMENTATION: OpenAI released neither weights nor code.
Section 2.1: "We use the same model and architecture as GPT-2, ... with the exception that we
use alternating dense and locally banded sparse attention patterns in the layers of the
transformer, similar to the Sparse Transformer". So: GPT-2's block (learned positions,
pre-LayerNorm with biases, biased attention, GELU MLP of 4 d_model with the tanh
approximation, the 50257-token BPE vocabulary, the head tied to the embedding), at the
sizes of Table 2.1 for GPT-3 175B: 96 layers, d_model 12288, 96 heads of d_head 128, a
2048-token context.

APPROXIMATION: the banded layers are modelled as sliding-window attention, alternating with
global layers starting with a global one. The paper gives neither the band width nor which
layer comes first. The Sparse Transformer (Child et al. 2019, arXiv:1904.10509, section 4.3)
sets its local band near sqrt(n) (its 12288-token models use 128); for n = 2048 that is ~45
tokens. We take 256, the window of EleutherAI's GPT-Neo (huggingface.co/EleutherAI/
gpt-neo-2.7B config.json: attention_types [[["global", "local"], 16]], window_size 256), the
public replication of this layout, so that archlab's numbers for it can be checked against a
released model. The band changes no parameter count; it changes the KV cache of the banded
layers and their attention FLOPs at long context.
"""

from ..model_config import AttentionConfig, FFNConfig, ModelConfig, NormConfig, Pattern
from . import Published, preset


@preset("gpt-3-175b", Published(
    "175.0B", "Brown et al. 2020, Language Models are Few-Shot Learners (arXiv:2005.14165), Table 2.1: "
    "GPT-3 175B, n_params 175.0B",
    note="our count is 174.60B (0.2% below); the paper does not say how it counted"), verified=False)
def gpt_3_175b() -> ModelConfig:
    return ModelConfig(
        name="gpt-3-175b",
        family="gpt3",
        source="Brown et al. 2020 (arXiv:2005.14165), Table 2.1 and section 2.1; the banded layers as a "
        "256-token sliding window (GPT-Neo's) are an approximation (not verified against a reference implementation)",
        vocab_size=50257,
        d_model=12288,
        n_layers=96,
        max_seq_len=2048,
        position="learned",
        norm=NormConfig("layernorm", eps=1e-5, bias=True),
        attention=AttentionConfig(n_heads=96, head_dim=128, qkv_bias=True, out_bias=True, window=256),
        # Table 2.1: d_ff = 4 * d_model
        ffn=FFNConfig(mult=4, kind="mlp", activation="gelu_tanh", bias=True),
        layer_types=Pattern(("global", "sliding")),
        tie_embeddings=True,
    )
