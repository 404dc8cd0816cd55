"""Grok 2.5 (xAI; trained in 2024, weights released in August 2025 as xai-org/grok-2).

NOT VERIFIED AGAINST A REFERENCE IMPLEMENTATION: there is no Hugging Face transformers
implementation. The numbers are the checkpoint's config.json; the semantics are read from
the code xAI points to for serving it, SGLang's python/sglang/srt/models/grok.py (Grok1*
classes with residual_moe) and its attention/router kernels.

What the reference code does, layer by layer:
- embeddings times embedding_multiplier_scale (90.51 = sqrt(8192));
- "sandwich" norms: x + post_attn_norm(attn(pre_attn_norm(x))), then
  x + post_moe_norm(ffn(pre_moe_norm(x))) (RMSNorm, eps 1e-5);
- grouped-query attention, 64 query / 8 key-value heads of 128, no biases, RoPE theta
  208533496 on the whole head (rope_type "original": the scaling_factor/beta fields in the
  config leave the frequencies unchanged), logits scaled by 1/sqrt(128) then squashed by
  30 tanh(x / 30) (attn_logit_softcapping);
- ffn = (dense GeGLU of 32768 + MoE) / sqrt(2) ("residual_moe"): the MoE is 8 GeGLU experts
  of 16384, top-2 of a softmax over the router logits after 30 tanh(x / 30)
  (router_logit_softcapping), not renormalised;
- final RMSNorm, untied head with its weights times output_multiplier_scale (0.5), logits
  squashed by 50 tanh(x / 50) (final_logit_softcapping).

The dense GeGLU of 32768 = 2 x 16384 is expressed as two shared experts, and the /sqrt(2)
as the MoE's output_scale; the attention temperature (attn_temperature_len 1024: logits of a
query at 0-based position p > 1024 are multiplied by log2(p) / log2(1024) after the softcap,
as SGLang's triton attention kernels do: qk = 30 tanh(qk / 30); qk *= temperature) is a
LengthTemperature.
GELU is exact (erf), as SGLang's CUDA kernels compute it (its NPU path uses the tanh form).

Numbers: huggingface.co/xai-org/grok-2/blob/main/config.json. xAI published no parameter
count for this model; the preset's Published figure is the released checkpoint's own size
(269,515,497,472, the sum of its tensors that a reader reported in
huggingface.co/xai-org/grok-2/discussions/6), marked by_authors=False. 114.9B active per token.
"""

import math

from ..model_config import SQRT_D_MODEL, AttentionConfig, LengthTemperature, ModelConfig, MoEConfig, NormConfig, RopeConfig, RouterConfig
from . import Published, preset


@preset("grok-2.5", Published(
    "269.5B", "huggingface.co/xai-org/grok-2/discussions/6: the sum of the released checkpoint's tensors",
    by_authors=False, note="xAI published no parameter count for Grok 2 / 2.5; this is the checkpoint's own size"),
    verified=False)
def grok_2_5() -> ModelConfig:
    return ModelConfig(
        name="grok-2.5",
        family="grok",
        source="huggingface.co/xai-org/grok-2/blob/main/config.json; semantics from SGLang "
        "python/sglang/srt/models/grok.py (not verified against a reference implementation)",
        vocab_size=131072,
        d_model=8192,
        n_layers=64,
        max_seq_len=131072,
        norm=NormConfig("rmsnorm", eps=1e-5),
        block="sandwich",
        position=RopeConfig(theta=208533496.0),
        # SGLang multiplies the capped logits of queries past position 1024 by log2(p) / log2(1024)
        attention=AttentionConfig(n_heads=64, n_kv_heads=8, head_dim=128, softcap=30.0, temperature=LengthTemperature(1024)),
        # No dense layer (every layer is MoE); the residual dense GeGLU is the shared experts below.
        moe=MoEConfig(
            n_experts=8, top_k=2, hidden=16384, activation="gelu",
            # the dense GeGLU of intermediate_size 32768, run beside the MoE on the same input
            n_shared=2,
            # the reference computes (dense + moe) / sqrt(2) ("residual_moe")
            output_scale=1 / math.sqrt(2),
            # softmax over router logits squashed to 30 tanh(x / 30), top-2, not renormalised
            router=RouterConfig(score="softmax", norm_topk=False, logit_softcap=30.0),
        ),
        embed_scale=SQRT_D_MODEL,  # embedding_multiplier_scale 90.50966799187809 = sqrt(8192)
        logit_scale=0.5,
        logit_softcap=50.0,
        tie_embeddings=False,
    )
