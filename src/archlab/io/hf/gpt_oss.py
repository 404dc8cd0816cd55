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
(gate_up_proj_blocks / _scales, down_proj_blocks / _scales; config.json
`quantization_config: {"quant_method": "mxfp4"}`): they are dequantized on load as HF's
Mxfp4Dequantize does (io/mxfp4.py), the blocks of HF's (E, out, in) matrices turned into its
(E, in, out) parameters. The bf16 / fp32 layout save_pretrained writes reads as well.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ...model_config import ConfigError, ModelConfig, MoEConfig, RouterConfig
from ..layouts import transpose_experts
from ..mapping import Rule, Tensors, rename
from ..mxfp4 import BLOCK, dequantize, packed_shapes
from .core import LOCAL_MOE_NAMES, CheckpointError, HFFamily, in_config_json_names, register
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
    if q and (not isinstance(q, dict) or q.get("quant_method") != "mxfp4"):
        raise CheckpointError(
            f"config.json: quantization_config={q!r}: only the release's MXFP4 experts (quant_method 'mxfp4') "
            "are read for GPT-OSS"
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
        raise in_config_json_names(e, LOCAL_MOE_NAMES) from None
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


def _from_mxfp4(rows_cols: Callable[[ModelConfig], tuple[int, int]], then: Callable[[Tensors, ModelConfig], Tensors]):
    """X_blocks, X_scales (the release's MXFP4 of HF's (E, out, in) matrix: rows, cols = out, in),
    then the dense layout's other tensors -> what `then` makes of the dense (E, in, out) one."""
    def f(ts: Tensors, cfg: ModelConfig) -> Tensors:
        blocks, scales, *rest = ts
        E, (rows, cols) = cfg.moe.n_experts, rows_cols(cfg)
        want = packed_shapes((E,), rows, cols)
        if cols % BLOCK or (tuple(blocks.shape), tuple(scales.shape)) != want:
            # raised while the shapes are checked, under the tensors' names (mapping._shape_problems)
            raise ValueError(
                f"MXFP4 of ({E}, {rows}, {cols}) expects _blocks {want[0]} and _scales {want[1]} (uint8: "
                f"{BLOCK // 2} bytes of 4-bit values and one exponent per {BLOCK} weights"
                + (f"; {cols} is not a multiple of {BLOCK}" if cols % BLOCK else "") + ")"
            )
        # HF's _convert_moe_packed_tensors: (E, rows, cols) dequantized, transposed to (E, cols, rows)
        return then([dequantize(blocks, scales).transpose(1, 2), *rest], cfg)
    return f


def _gpt_oss_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    m, ours = "model.layers.{i}.mlp.", "layers.{i}.ffn."
    gate_up = tuple(ours + f"experts.{n}" for n in ("gate", "up", "gate_bias", "up_bias"))
    # the release's layout, read where the dense one is absent (core: Rule.alternative)
    packed = lambda name: (m + f"experts.{name}_blocks", m + f"experts.{name}_scales")  # noqa: E731
    gate_up_mx = Rule(gate_up, (*packed("gate_up_proj"), m + "experts.gate_up_proj_bias"),
                      _from_mxfp4(lambda c: (2 * c.moe.hidden, c.d_model), _split_gate_up))
    down_mx = Rule((ours + "experts.down",), packed("down_proj"), _from_mxfp4(lambda c: (c.d_model, c.moe.hidden), transpose_experts))
    return decoder_rules(PRE_NORMS) + [
        rename("layers.{i}.attn.sinks", "model.layers.{i}.self_attn.sinks"),
        rename(ours + "router.weight", m + "router.weight"),
        rename(ours + "router.bias", m + "router.bias"),
        Rule(gate_up, (m + "experts.gate_up_proj", m + "experts.gate_up_proj_bias"), _split_gate_up, _join_gate_up,
             alternative=gate_up_mx),
        # down_proj (E, F, D), applied as x @ down_proj[e]; ours (E, D, F)
        Rule((ours + "experts.down",), (m + "experts.down_proj",), transpose_experts, transpose_experts,
             alternative=down_mx),
        rename(ours + "experts.down_bias", m + "experts.down_proj_bias"),
    ]


register(HFFamily(("gpt_oss",), _gpt_oss_config, _gpt_oss_rules, ignore=IGNORE))
