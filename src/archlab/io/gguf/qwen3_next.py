"""GGUF `qwen3next` (Qwen3-Next-80B-A3B) read through archlab's HF qwen3_next family.

How llama.cpp's converter writes it (Qwen3NextModel(Qwen2MoeModel) in conversion/qwen.py):
- Gated DeltaNet layers: in_proj_qkvz, grouped per key head as [q_g | k_g | v_g | z_g], split
  into attn_qkv ([all q | all k | all v]) and attn_gate (all z); in_proj_ba as ssm_ba; A_log
  stored as ssm_a = -exp(A_log); dt_bias as ssm_dt.bias; conv1d (C, 1, K) squeezed to ssm_conv1d
  (C, K); the gated norm as ssm_norm; out_proj as ssm_out.
- Every norm weight but the DeltaNet's gated one stored as 1 + w (Qwen3NextRMSNorm scales by
  1 + w, llama.cpp's RMSNorm by w); post_attention_layernorm (before the MLP) as post_attention_norm.
- Full-attention layers every full_attention_interval-th (llama.cpp: (il + 1) % interval == 0),
  q_proj holding each head's query and output gate as HF has it; partial RoPE in rope.dimension_count.
- Qwen2MoeModel's experts (stacked), shared expert (shexp) and its gate (ffn_gate_inp_shexp);
  llama.cpp's qwen3next renormalises the top-k weights and has no dense layers.
- The multi-token-prediction layers (mtp.*) are not converted.
HF's GGUF loader does not read qwen3next.
"""

from __future__ import annotations

from typing import Any

import torch

from .families import llama_like_json
from .hf_backed import LAYER, SPECIAL, HFBacked, Names, Tensors
from .metadata import int_value
from .reader import GGUFFile

__all__ = ["QWEN3_NEXT"]


def _qwen3_next_json(g: GGUFFile) -> dict[str, Any]:
    hf = llama_like_json(g, "qwen3_next")
    n_layers, interval = hf["num_hidden_layers"], int_value(g, "full_attention_interval", 4)
    n_v_heads = int_value(g, "ssm.time_step_rank")
    rope = hf.pop("rope_parameters")
    hf.update(
        layer_types=["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(n_layers)],
        linear_conv_kernel_dim=int_value(g, "ssm.conv_kernel"),
        linear_key_head_dim=int_value(g, "ssm.state_size"),
        linear_num_key_heads=int_value(g, "ssm.group_count"),
        linear_num_value_heads=n_v_heads,
        linear_value_head_dim=int_value(g, "ssm.inner_size") // n_v_heads,
        num_experts=int_value(g, "expert_count"), num_experts_per_tok=int_value(g, "expert_used_count"),
        moe_intermediate_size=int_value(g, "expert_feed_forward_length"),
        shared_expert_intermediate_size=int_value(g, "expert_shared_feed_forward_length"),
        norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
        rope_parameters=rope, partial_rotary_factor=rope["partial_rotary_factor"],
    )
    return hf


def _qkvz(ts: Tensors, hf: dict) -> torch.Tensor:
    """attn_qkv [all q | all k | all v] and attn_gate (all z) -> HF's in_proj_qkvz, grouped per
    key head g as [q_g | k_g | v_g | z_g] (the inverse of Qwen3NextModel.modify_tensors)."""
    qkv, z = ts
    hk, dk = hf["linear_num_key_heads"], hf["linear_key_head_dim"]
    d = qkv.shape[-1]
    q, k, v = qkv[:hk * dk], qkv[hk * dk:2 * hk * dk], qkv[2 * hk * dk:]
    per_head = [t.reshape(hk, -1, d) for t in (q, k, v, z)]  # (Hk, rows per key head, D)
    return torch.cat(per_head, dim=1).reshape(-1, d)


_NAMES = Names(
    layer={**LAYER, "post_attention_layernorm": "post_attention_norm", "mlp.shared_expert_gate": "ffn_gate_inp_shexp",
           "linear_attn.in_proj_ba": "ssm_ba", "linear_attn.norm": "ssm_norm", "linear_attn.out_proj": "ssm_out"},
    special={
        **SPECIAL,
        "linear_attn.in_proj_qkvz.weight": [(("attn_qkv.weight", "attn_gate.weight"), _qkvz)],
        "linear_attn.A_log": [(("ssm_a",), lambda ts, hf: torch.log(-ts[0]))],
        "linear_attn.dt_bias": [(("ssm_dt.bias",), lambda ts, hf: ts[0])],
        "linear_attn.conv1d.weight": [(("ssm_conv1d.weight",), lambda ts, hf: ts[0].unsqueeze(1))],
    },
    # the shared expert's gate: HF (1, D); files hold (D,) or (1, D) (HF's Qwen2MoeTensorProcessor)
    transforms={"mlp.shared_expert_gate": lambda t, hf: t.reshape(1, -1)},
    norm_shift=1.0, unshifted=("linear_attn.norm",),
)

QWEN3_NEXT = HFBacked(_qwen3_next_json, _NAMES)
