"""Saving as HF `qwen2` (Qwen2, Qwen2.5) and `qwen2_moe` (Qwen1.5-MoE, Qwen2-57B-A14B): each
config.json the inverse of qwen2.py's reader, with what a config must hold to be that family.
As in llama_like_save.py, save.choose_family's read-back check catches what `problems` misses.

Both put biases on q, k and v and none on o (modeling_qwen2.py Qwen2Attention, hard-coded;
modeling_qwen2_moe.py Qwen2MoeAttention, as qkv_bias says), which no Llama-shaped family before
them in the save order expresses (their attention_bias covers o too). Their sliding-layer rules
differ (qwen2: from max_window_layers on; qwen2_moe: the even layers below it), so both are
written with an explicit layer_types, which v5's config classes take over either rule."""

from __future__ import annotations

from typing import Any

from ...model_config import ModelConfig
from .core import enable_saving
from .llama_like_save import base_json, hf_layer_types, llama_shape_problems, qwen_window, window


def _attention_problems(cfg: ModelConfig, name: str, *, qkv_bias_fixed: bool) -> list[str]:
    a, p = cfg.resolved_attention, []
    if a.kind != "attention":
        return p  # llama_shape_problems names the attention kind
    if qkv_bias_fixed and not a.qkv_bias:
        p.append(f"attention.qkv_bias=False ({name}'s q, k and v projections always have biases)")
    if a.out_bias:
        p.append(f"attention.out_bias=True ({name}'s o_proj has no bias)")
    if a.qk_norm is not None:
        p.append(f"attention.qk_norm={a.qk_norm} ({name} has no QK-norm)")
    return p


# ---- qwen2 (configuration_qwen2.py) -----------------------------------------------------------

def _qwen2_problems(cfg: ModelConfig) -> list[str]:
    return (llama_shape_problems(cfg, "Qwen2", layer_kinds=("global", "sliding"))
            + _attention_problems(cfg, "Qwen2", qkv_bias_fixed=True))


def _qwen2_json(cfg: ModelConfig) -> dict[str, Any]:
    hf = {**base_json(cfg), **qwen_window(cfg)}
    del hf["attention_bias"]  # not a Qwen2Config field: the biases are fixed
    return hf


# ---- qwen2_moe (configuration_qwen2_moe.py) ---------------------------------------------------

def _qwen2_moe_problems(cfg: ModelConfig) -> list[str]:
    p = (llama_shape_problems(cfg, "Qwen2-MoE", layer_kinds=("global", "sliding"), moe=True)
         + _attention_problems(cfg, "Qwen2-MoE", qkv_bias_fixed=False))
    m, f = cfg.moe, cfg.resolved_ffn
    if m is None:
        return p
    if not m.n_shared or not m.shared_gate:
        # Qwen2MoeSparseMoeBlock: shared_expert and shared_expert_gate in every MoE layer
        p.append(f"moe.n_shared={m.n_shared} shared_gate={m.shared_gate} (Qwen2-MoE's MoE layers have a gated shared expert)")
    if f is not None and m.activation != f.activation:
        p.append(f"moe.activation={m.activation!r} differs from ffn.activation={f.activation!r} (Qwen2-MoE has one hidden_act)")
    return p


def _qwen2_moe_json(cfg: ModelConfig) -> dict[str, Any]:
    m, a = cfg.moe, cfg.resolved_attention
    hf = {**base_json(cfg), "qkv_bias": a.qkv_bias, "layer_types": hf_layer_types(cfg)}
    del hf["attention_bias"]  # Qwen2MoeConfig's field is qkv_bias (o_proj never has one)
    sliding = [s.index for s in cfg.layers if s.kind == "sliding"]
    # Qwen2MoeConfig's own rule slides the even layers below max_window_layers; v5 reads
    # layer_types first, and this bound makes the rule agree where the plan is of that shape.
    # Without sliding layers use_sliding_window false turns sliding_window into 0, which the
    # model never reads (its sliding mask is built, and used by no layer).
    hf.update(use_sliding_window=bool(sliding), sliding_window=window(cfg),
              max_window_layers=sliding[-1] + 1 if sliding else cfg.n_layers)
    return {
        **hf, "num_experts": m.n_experts, "num_experts_per_tok": m.top_k, "moe_intermediate_size": m.hidden,
        "shared_expert_intermediate_size": m.shared_width, "norm_topk_prob": m.router.norm_topk,
        "decoder_sparse_step": 1, "mlp_only_layers": [s.index for s in cfg.layers if s.ffn == "dense"],
        "router_aux_loss_coef": 0.0, "output_router_logits": False,
    }


enable_saving("qwen2", architecture="Qwen2ForCausalLM", problems=_qwen2_problems, write_config=_qwen2_json)
enable_saving("qwen2_moe", architecture="Qwen2MoeForCausalLM", problems=_qwen2_moe_problems, write_config=_qwen2_moe_json)
