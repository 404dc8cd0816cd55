"""HF `gpt_oss` (OpenAI GPT-OSS 20B / 120B): the Llama block with biases on q/k/v/o, a learned
sink logit per head in every softmax, sliding and full attention layers as `layer_types`
says, and MoE in every layer.

# diff with llama (modeling_gpt_oss.py)
- GptOssAttention.sinks (n_heads,): eager_attention_forward concatenates it to each row of
  logits, softmaxes, and drops it again (AttentionConfig.sinks).
- GptOssTopKRouter: a linear layer with a bias, softmax over its top-k logits, which is
  softmax over all, top-k, renormalised (RouterConfig.logit_bias, norm_topk).
- GptOssExperts: a clamped SwiGLU, (up + 1) * gate * sigmoid(swiglu_alpha gate), with biases;
  swiglu_alpha and swiglu_limit from config.json (1.702 and 7.0 in the release).
  Stored fused: gate_up_proj (E, D, 2F) with gate and up *interleaved* along the last axis
  (`gate_up[..., ::2]`, `gate_up[..., 1::2]`), gate_up_proj_bias (E, 2F), and down_proj
  (E, F, D) applied as `x @ down_proj[e]`; ours keep gate / up (E, F, D) and down (E, D, F).
- RoPE is rotate-half (`_apply_rotary_emb` splits each head in halves), YaRN with
  truncate=false by default.

The hub checkpoints (openai/gpt-oss-*) hold the experts quantized to MXFP4
(gate_up_proj_blocks / _scales and config.json `quantization_config`); only the bf16 /
fp32 layout save_pretrained writes for a dequantized model is read here.
"""

from __future__ import annotations

import math

import torch

from ...model_config import ConfigError, ModelConfig, MoEConfig, RouterConfig
from ..layouts import transpose_experts
from ..mapping import Rule, Tensors, rename
from .core import CheckpointError, HFFamily, register
from .llama_like import layer_types, llama_like_config, positive_int, sliding_window, with_defaults
from .llama_rules import IGNORE, PRE_NORMS, decoder_rules

# GptOssConfig's defaults (configuration_gpt_oss.py) for what config.json may leave out.
_DEFAULTS = {
    "num_key_value_heads": 8, "head_dim": 64, "sliding_window": 128, "rms_norm_eps": 1e-5, "max_position_embeddings": 131072,
    "num_experts_per_tok": 4, "swiglu_alpha": 1.702, "swiglu_limit": 7.0, "attention_bias": True,
    "tie_word_embeddings": False,
}
# GptOssConfig.__post_init__'s RoPE when config.json gives none
_ROPE = {"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
         "truncate": False, "original_max_position_embeddings": 4096}


def _gpt_oss_config(hf: dict) -> ModelConfig:
    q = hf.get("quantization_config")
    if q:
        raise CheckpointError(
            f"config.json: quantization_config={q!r}: quantized GPT-OSS checkpoints (the hub's MXFP4 experts, "
            "stored as *_blocks / *_scales tensors) are not supported; dequantize first (HF: "
            "Mxfp4Config(dequantize=True), then save_pretrained)"
        )
    hf = with_defaults(hf, _DEFAULTS)
    if not hf.get("rope_parameters") and not hf.get("rope_scaling"):
        hf["rope_parameters"] = _ROPE
    n_layers = positive_int(hf, "num_hidden_layers")
    # GptOssConfig.__post_init__: sliding at even layers, full at odd ones
    types = layer_types(hf, n_layers, ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n_layers)])
    alpha = hf["swiglu_alpha"]  # GptOssExperts: sigmoid(gate * swiglu_alpha)
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not math.isfinite(alpha):
        raise CheckpointError(f"config.json: swiglu_alpha must be a finite number, got {alpha!r}")
    limit = hf["swiglu_limit"]
    if not isinstance(limit, (int, float)) or isinstance(limit, bool) or limit <= 0:
        raise CheckpointError(f"config.json: swiglu_limit must be a positive number, got {limit!r}")
    hidden = positive_int(hf, "intermediate_size")
    try:
        moe = MoEConfig(
            n_experts=positive_int(hf, "num_local_experts"),
            top_k=positive_int(hf, "num_experts_per_tok"),
            hidden=hidden,
            router=RouterConfig(score="softmax", norm_topk=True, logit_bias=True),
            bias=True,
            swiglu_limit=float(limit),
            swiglu_alpha=float(alpha),
        )
    except ConfigError as e:
        raise CheckpointError(f"config.json: num_local_experts / num_experts_per_tok: {e}") from None
    return llama_like_config(
        hf, family="gpt_oss", theta=150000.0, n_layers=n_layers, moe=moe, layer_types=types,
        attention={"window": sliding_window(hf, types), "sinks": True},
        # every layer is MoE: intermediate_size is the experts' width, and the dense FFN that
        # this describes (hidden_act is not in GPT-OSS's config.json) is dropped
        ffn={"hidden": hidden, "activation": "silu"},
    )


def _split_gate_up(ts: Tensors, cfg: ModelConfig) -> Tensors:
    w, b = ts  # (E, D, 2F), (E, 2F): gate at even columns, up at odd ones
    return [
        w[..., 0::2].transpose(1, 2).contiguous(),  # gate (E, F, D)
        w[..., 1::2].transpose(1, 2).contiguous(),  # up (E, F, D)
        b[:, 0::2].contiguous(),
        b[:, 1::2].contiguous(),
    ]


def _join_gate_up(ts: Tensors, cfg: ModelConfig) -> Tensors:
    gate, up, gate_b, up_b = ts
    w = torch.stack((gate.transpose(1, 2), up.transpose(1, 2)), dim=-1).flatten(-2)  # (E, D, 2F) interleaved
    return [w.contiguous(), torch.stack((gate_b, up_b), dim=-1).flatten(-2)]


def _refuse_mxfp4(ts: Tensors, cfg: ModelConfig) -> Tensors:
    raise CheckpointError(
        "the experts are stored quantized to MXFP4 (*_blocks / *_scales tensors, the hub's layout), which is "
        "not supported; dequantize first (HF: Mxfp4Config(dequantize=True), then save_pretrained)"
    )


def _gpt_oss_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    m, ours = "model.layers.{i}.mlp.", "layers.{i}.ffn."
    gate_up = tuple(ours + f"experts.{n}" for n in ("gate", "up", "gate_bias", "up_bias"))
    # read in place of the dense layout only to say why it cannot be (core: Rule.alternative)
    mxfp4 = lambda ours, name: Rule(ours, (m + f"experts.{name}_blocks", m + f"experts.{name}_scales"), _refuse_mxfp4)
    return decoder_rules(PRE_NORMS) + [
        rename("layers.{i}.attn.sinks", "model.layers.{i}.self_attn.sinks"),
        rename(ours + "router.weight", m + "router.weight"),
        rename(ours + "router.bias", m + "router.bias"),
        Rule(gate_up, (m + "experts.gate_up_proj", m + "experts.gate_up_proj_bias"), _split_gate_up, _join_gate_up,
             alternative=mxfp4(gate_up, "gate_up_proj")),
        # down_proj (E, F, D), applied as x @ down_proj[e]; ours (E, D, F)
        Rule((ours + "experts.down",), (m + "experts.down_proj",), transpose_experts, transpose_experts,
             alternative=mxfp4((ours + "experts.down",), "down_proj")),
        rename(ours + "experts.down_bias", m + "experts.down_proj_bias"),
    ]


register(HFFamily(("gpt_oss",), _gpt_oss_config, _gpt_oss_rules, ignore=IGNORE))
