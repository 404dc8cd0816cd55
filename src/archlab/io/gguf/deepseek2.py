"""GGUF `deepseek2` (DeepSeek-V2/V2.5/V3/R1, Kimi K2: llama.cpp's one architecture for MLA models)
read through archlab's HF deepseek_v2 / deepseek_v3 families.

How llama.cpp's converter writes them (conversion/deepseek.py, DeepseekV2Model):
- MLA as MQA with larger heads: head_count_kv 1, key_length kv_lora_rank + qk_rope_head_dim,
  value_length kv_lora_rank; the per-head sizes in key_length_mla / value_length_mla. Older files
  have no *_mla keys and give the per-head sizes in key_length / value_length.
- kv_b_proj split per head into attn_k_b (H, kv_lora_rank, qk_nope_head_dim: transposed, for the
  absorbed attention) and attn_v_b (H, v_head_dim, kv_lora_rank); older files keep attn_kv_b.
- Query and key rows as the HF checkpoint holds them (adjacent RoPE pairs): no permutation.
- Experts stacked per projection, e_score_correction_bias as exp_probs_b.bias, leading dense
  layers (leading_dense_block_count), routing by expert_gating_func (1 softmax: V2, 2 sigmoid:
  V3), expert_weights_scale / expert_weights_norm, expert groups (expert_group_count /
  expert_group_used_count) where written.
- YaRN with rope.scaling.yarn_log_multiplier = 0.1 * mscale_all_dim ([TAG_DEEPSEEK2_YARN_LOG_MUL_FIX]).

What llama.cpp assumes where a file is silent (src/llama-model.cpp, LLM_ARCH_DEEPSEEK2): softmax
gating (DeepSeek V2/V2.5 files have no expert_gating_func), no top-k renormalisation, no expert
groups. HF's GGUF loader does not read deepseek2.
"""

from __future__ import annotations

from typing import Any

import torch

from ...errors import CheckpointError
from .hf_backed import HFBacked, Names, SPECIAL, Tensors
from .metadata import float_value, int_value, vocab_size
from .reader import GGUFFile

__all__ = ["DEEPSEEK2", "NAMES"]

_SOFTMAX, _SIGMOID = 1, 2  # gguf.ExpertGatingFuncType


def _mla_sizes(g: GGUFFile) -> tuple[int, int]:
    """(qk_nope_head_dim, v_head_dim) from either generation of the metadata."""
    rope = int_value(g, "rope.dimension_count")
    key = int_value(g, "attention.key_length_mla", None)
    if key is not None:
        return key - rope, int_value(g, "attention.value_length_mla")
    return int_value(g, "attention.key_length") - rope, int_value(g, "attention.value_length")


def _rope(g: GGUFFile, ctx: int) -> dict[str, Any]:
    theta = float_value(g, "rope.freq_base", 10000.0, positive=True)
    kind = g.arch_value("rope.scaling.type", "none")
    if kind == "none":
        return {"rope_type": "default", "rope_theta": theta}
    if kind != "yarn":
        raise CheckpointError(f"{g.path}: deepseek2.rope.scaling.type={kind!r} is not supported (supported: none, yarn)")
    # llama.cpp's deepseek2 graph: mscale = 1 + yarn_log_multiplier * ln(factor) scales both the
    # attention and (cancelled in the rotation) the YaRN rotation, which is DeepSeek's
    # yarn_get_mscale(factor, mscale_all_dim) with mscale == mscale_all_dim, as every release has it
    mscale = float_value(g, "rope.scaling.yarn_log_multiplier", 0.0) / 0.1
    return {
        "rope_type": "yarn", "rope_theta": theta, "factor": float_value(g, "rope.scaling.factor", positive=True),
        "original_max_position_embeddings": int_value(g, "rope.scaling.original_context_length", ctx),
        "beta_fast": float_value(g, "rope.scaling.yarn_beta_fast", 32.0),
        "beta_slow": float_value(g, "rope.scaling.yarn_beta_slow", 1.0),
        "mscale": mscale, "mscale_all_dim": mscale,
    }


def _deepseek2_json(g: GGUFFile) -> dict[str, Any]:
    gating = int_value(g, "expert_gating_func", _SOFTMAX)
    if gating not in (_SOFTMAX, _SIGMOID):
        raise CheckpointError(f"{g.path}: deepseek2.expert_gating_func={gating} is not supported (1 softmax, 2 sigmoid)")
    nope, v = _mla_sizes(g)
    ctx = int_value(g, "context_length")
    n_layers = int_value(g, "block_count")
    groups, groups_used = int_value(g, "expert_group_count", 1), int_value(g, "expert_group_used_count", 1)
    hf: dict[str, Any] = {
        "model_type": "deepseek_v3" if gating == _SIGMOID else "deepseek_v2",
        "vocab_size": vocab_size(g), "hidden_size": int_value(g, "embedding_length"), "num_hidden_layers": n_layers,
        "intermediate_size": int_value(g, "feed_forward_length"), "max_position_embeddings": ctx,
        "num_attention_heads": int_value(g, "attention.head_count"),
        "rms_norm_eps": float_value(g, "attention.layer_norm_rms_epsilon", 1e-6),
        "q_lora_rank": int_value(g, "attention.q_lora_rank", 0) or None,
        "kv_lora_rank": int_value(g, "attention.kv_lora_rank"),
        "qk_rope_head_dim": int_value(g, "rope.dimension_count"), "qk_nope_head_dim": nope, "v_head_dim": v,
        "hidden_act": "silu", "attention_bias": False, "tie_word_embeddings": "output.weight" not in g,
        "rope_parameters": _rope(g, ctx), "rope_interleave": True,
    }
    n_experts = int_value(g, "expert_count", 0)
    if n_experts:
        hf.update(
            n_routed_experts=n_experts, num_experts_per_tok=int_value(g, "expert_used_count"),
            moe_intermediate_size=int_value(g, "expert_feed_forward_length"),
            n_shared_experts=int_value(g, "expert_shared_count", 0),
            first_k_dense_replace=int_value(g, "leading_dense_block_count", 0), moe_layer_freq=1,
            routed_scaling_factor=float_value(g, "expert_weights_scale", 1.0),
            norm_topk_prob=bool(g.arch_value("expert_weights_norm", False)),
            n_group=groups, topk_group=groups_used,
            topk_method="group_limited_greedy" if groups > 1 else "greedy",
        )
    return hf


def _kv_b(ts: Tensors, hf: dict) -> torch.Tensor:
    """kv_b_proj (H (nope + v), kv_lora) from attn_k_b (H, kv_lora, nope) and attn_v_b (H, v, kv_lora)."""
    k_b, v_b = ts
    return torch.cat((k_b.transpose(1, 2), v_b), dim=1).reshape(-1, k_b.shape[1])


_ATTN = {
    "self_attn.q_proj": "attn_q", "self_attn.q_a_proj": "attn_q_a", "self_attn.q_a_layernorm": "attn_q_a_norm",
    "self_attn.q_b_proj": "attn_q_b", "self_attn.kv_a_proj_with_mqa": "attn_kv_a_mqa",
    "self_attn.kv_a_layernorm": "attn_kv_a_norm", "self_attn.o_proj": "attn_output",
}
_MLP = {
    "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down", "mlp.gate": "ffn_gate_inp",
    "mlp.shared_experts.gate_proj": "ffn_gate_shexp", "mlp.shared_experts.up_proj": "ffn_up_shexp",
    "mlp.shared_experts.down_proj": "ffn_down_shexp",
}
NAMES = Names(
    layer={**_MLP, **_ATTN},
    special={
        **SPECIAL,
        "self_attn.kv_b_proj.weight": [(("attn_k_b.weight", "attn_v_b.weight"), _kv_b),
                                       (("attn_kv_b.weight",), lambda ts, hf: ts[0])],
        "mlp.gate.e_score_correction_bias": [(("exp_probs_b.bias",), lambda ts, hf: ts[0])],
    },
)

DEEPSEEK2 = HFBacked(_deepseek2_json, NAMES)
