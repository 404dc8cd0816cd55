"""PaLM (Google; Chowdhery et al. 2022, PaLM: Scaling Language Modeling with Pathways,
arXiv:2204.02311).

NOT VERIFIED AGAINST A REFERENCE IMPLEMENTATION: Google released neither weights nor code.
Section 2 (Model Architecture) lists every departure from the standard decoder:
- SwiGLU feed-forward of d_ff = 4 d_model ("the dimension of the feed-forward layer is
  4 d_model"), no biases anywhere ("No biases were used in any of the dense kernels or layer
  norms": LayerNorm without its bias);
- parallel blocks: y = x + MLP(LayerNorm(x)) + Attention(LayerNorm(x));
- multi-query attention: one key/value head of 256 shared by all query heads;
- RoPE; a 256k-token SentencePiece vocabulary; shared input/output embeddings, with the
  pre-softmax logits scaled by 1/sqrt(d_model) (section 5, Training Setup: "Because the input
  and output embeddings are shared, we scale the pre-softmax output logits by 1/sqrt(n)").
Table 1, PaLM 540B: 118 layers, d_model 18432, 48 heads of d_head 256; sequence length 2048
(section 5).

Where archlab differs: its parallel block gives each branch its own LayerNorm (GPT-NeoX's
layout, two scales per layer), where PaLM's formula reads as one norm feeding both branches
(GPT-J's); at initialisation the two compute the same, and the second norm adds 18432 x 118 =
2.2M parameters (0.0004% of the model). The LayerNorm epsilon is not published; 1e-6 is T5X's
default (the framework PaLM was trained with). RoPE theta 10000 is RoPE's own default.
"""

from ..model_config import INV_SQRT_D_MODEL, AttentionConfig, FFNConfig, ModelConfig, NormConfig, RopeConfig
from . import Published, preset


@preset("palm-540b", Published(
    "540B", "Chowdhery et al. 2022, PaLM: Scaling Language Modeling with Pathways (arXiv:2204.02311), abstract and "
    "Table 1: a 540-billion parameter model",
    note="our count is 540.36B (540.357B with PaLM's one norm per layer instead of archlab's two)"), verified=False)
def palm_540b() -> ModelConfig:
    return ModelConfig(
        name="palm-540b",
        family="palm",
        source="Chowdhery et al. 2022 (arXiv:2204.02311), section 2 and Table 1 (not verified against a reference "
        "implementation)",
        vocab_size=256000,
        d_model=18432,
        n_layers=118,
        max_seq_len=2048,
        position=RopeConfig(theta=10000.0),
        block="parallel",
        norm=NormConfig("layernorm", eps=1e-6, bias=False),
        # multi-query attention: 48 query heads of 256 (12288, narrower than d_model) and one key/value head
        attention=AttentionConfig(n_heads=48, n_kv_heads=1, head_dim=256),
        ffn=FFNConfig(mult=4, kind="glu", activation="silu"),
        tie_embeddings=True,
        logit_scale=INV_SQRT_D_MODEL,  # 1 / sqrt(18432), and 1 / sqrt(d_model) at any width
    )
