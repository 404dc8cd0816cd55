"""Saving as the HF families with experts or mixers of their own: glm4_moe, gpt_oss, llama4_text
and qwen3_next (each config.json the inverse of its reader), with what a config must hold to be
that family. As in llama_like_save.py, save.choose_family's read-back check catches what a
`problems` list misses."""

from __future__ import annotations

from typing import Any

from ...model_config import ModelConfig
from .core import enable_saving
from .deepseek_save import zero_score_bias  # GLM-4.5's router is DeepSeek-V3's: a selection bias, zeros when ours has none
from .llama_like_save import all_moe, base_json, hf_layer_types, kinds, llama_shape_problems, window


def _first_moe(cfg: ModelConfig) -> int:
    return next((s.index for s in cfg.layers if s.ffn == "moe"), cfg.n_layers)


# ---- glm4_moe (configuration_glm4_moe.py) -----------------------------------------------------

def _glm4_moe_problems(cfg: ModelConfig) -> list[str]:
    p = llama_shape_problems(cfg, "GLM-4.5", moe=None, partial_rope=True)
    k = _first_moe(cfg)
    if [s.ffn for s in cfg.layers] != ["dense"] * k + ["moe"] * (cfg.n_layers - k):
        p.append(f"ffn_types={[s.ffn for s in cfg.layers]} (GLM-4.5's MoE layers are all layers from first_k_dense_replace on)")
    return p


def _glm4_moe_json(cfg: ModelConfig) -> dict[str, Any]:
    a, m = cfg.resolved_attention, cfg.moe
    hf = {**base_json(cfg), "use_qk_norm": a.qk_norm is not None, "first_k_dense_replace": _first_moe(cfg),
          "num_nextn_predict_layers": 0, "partial_rotary_factor": cfg.rope.partial}
    hf["rope_parameters"]["partial_rotary_factor"] = cfg.rope.partial  # Glm4MoeConfig's default is 0.5, not 1
    if m is None:
        return hf
    r = m.router
    return {
        **hf, "n_routed_experts": m.n_experts, "num_experts_per_tok": m.top_k, "moe_intermediate_size": m.hidden,
        "n_shared_experts": m.n_shared, "routed_scaling_factor": r.scale, "norm_topk_prob": r.norm_topk,
        "n_group": r.n_groups, "topk_group": r.topk_groups,
    }


# ---- gpt_oss (configuration_gpt_oss.py) -------------------------------------------------------

def _gpt_oss_json(cfg: ModelConfig) -> dict[str, Any]:
    m = cfg.moe
    hf = base_json(cfg)
    hf.pop("hidden_act")  # GptOssExperts' activation is fixed (swiglu_alpha, swiglu_limit)
    return {
        **hf, "intermediate_size": m.hidden, "layer_types": hf_layer_types(cfg), "sliding_window": window(cfg) or 128,
        "num_local_experts": m.n_experts, "num_experts_per_tok": m.top_k, "swiglu_limit": m.swiglu_limit,
        "swiglu_alpha": m.swiglu_alpha, "router_aux_loss_coef": 0.0, "output_router_logits": False,
    }


def _gpt_oss_problems(cfg: ModelConfig) -> list[str]:
    p = llama_shape_problems(cfg, "GPT-OSS", layer_kinds=("global", "sliding"), moe=True)
    p = [x for x in p if not x.startswith("attention.sinks")]
    a = cfg.resolved_attention
    if a.kind == "attention" and not a.sinks:
        p.append("attention.sinks=False (GPT-OSS has a learned sink logit per head)")
    if cfg.moe is not None and cfg.moe.swiglu_limit is None:
        p.append("moe.swiglu_limit=None (GPT-OSS's experts are a clamped SwiGLU)")
    p += all_moe(cfg, "GPT-OSS")
    return p


def _whole(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


# ---- llama4_text (configuration_llama4.py) ----------------------------------------------------

def _llama4_json(cfg: ModelConfig) -> dict[str, Any]:
    a, m, f = cfg.resolved_attention, cfg.moe, cfg.resolved_ffn
    t = a.temperature
    hf = {
        **base_json(cfg),
        "intermediate_size": (m or f).hidden,  # the experts' width
        "intermediate_size_mlp": (f or m).hidden,  # the dense layers'
        "no_rope_layers": [int(s.rope is not None) for s in cfg.layers],
        "layer_types": hf_layer_types(cfg),
        "attention_chunk_size": a.chunk if a.chunk is not None else 8192,
        "moe_layers": [s.index for s in cfg.layers if s.ffn == "moe"],
        "interleave_moe_layer_step": 1,
        "use_qk_norm": a.qk_norm is not None,
        "attn_temperature_tuning": t is not None,
        # Llama4TextConfig.floor_scale is an int (its validator refuses 4.0)
        "floor_scale": _whole(t.floor_scale) if t is not None else 8192,
        "attn_scale": t.scale if t is not None else 0.1,
        "router_aux_loss_coef": 0.0, "output_router_logits": False,
    }
    if m is not None:
        hf.update(num_local_experts=m.n_experts, num_experts_per_tok=m.top_k)
    return hf


def _llama4_problems(cfg: ModelConfig) -> list[str]:
    p = llama_shape_problems(cfg, "Llama 4", layer_kinds=("global", "chunked"), moe=None)
    m, f, a = cfg.moe, cfg.resolved_ffn, cfg.resolved_attention
    s = cfg.rope.scaling if cfg.position_kind == "rope" else None
    if a.kind == "attention" and a.qk_norm is not None and s is not None and s.kind == "yarn":
        # HF's Llama 4 L2-normalises q and k *after* the rotation, which YaRN's cos/sin scale by
        # its attention factor; the norm undoes that scaling, ours (before the rotation) keeps
        # it: measured 1.9 apart in the logits
        p.append("rope.scaling.kind='yarn' with attention.qk_norm (HF's Llama 4 normalises after the rotation, undoing YaRN's scale)")
    if m is not None and m.n_shared != 1:
        p.append(f"moe.n_shared={m.n_shared} (Llama 4's MoE layers have one shared expert)")
    if m is not None and f is not None and m.activation != f.activation:
        p.append(f"moe.activation={m.activation!r} differs from ffn.activation={f.activation!r} (Llama 4 has one hidden_act)")
    return p


# ---- qwen3_next (configuration_qwen3_next.py) -------------------------------------------------

def _qwen3_next_json(cfg: ModelConfig) -> dict[str, Any]:
    m, g = cfg.moe, cfg.linear_attention
    hf = {**base_json(cfg), "layer_types": hf_layer_types(cfg), "partial_rotary_factor": cfg.rope.partial,
          "decoder_sparse_step": 1, "mlp_only_layers": [s.index for s in cfg.layers if s.ffn == "dense"],
          "router_aux_loss_coef": 0.0, "output_router_logits": False}
    hf["rope_parameters"]["partial_rotary_factor"] = cfg.rope.partial  # Qwen3NextConfig's default is 0.25, not 1
    if g is not None:
        hf.update(linear_num_key_heads=g.n_k_heads, linear_num_value_heads=g.n_v_heads, linear_key_head_dim=g.k_head_dim,
                  linear_value_head_dim=g.v_head_dim, linear_conv_kernel_dim=g.conv_kernel)
    if m is None:
        return {**hf, "num_experts": 0}
    return {
        **hf, "num_experts": m.n_experts, "num_experts_per_tok": m.top_k, "moe_intermediate_size": m.hidden,
        "shared_expert_intermediate_size": m.shared_width,  # shared_hidden where not whole experts (qwen3_next.py)
        "norm_topk_prob": m.router.norm_topk,
    }


def _qwen3_next_problems(cfg: ModelConfig) -> list[str]:
    p = llama_shape_problems(cfg, "Qwen3-Next", unit_offset=True, layer_kinds=("global", "linear"), moe=None,
                             partial_rope=True)
    m = cfg.moe
    if m is not None and (m.n_shared == 0 or not m.shared_gate):
        p.append(f"moe.n_shared={m.n_shared} shared_gate={m.shared_gate} (Qwen3-Next's MoE layers have a gated shared expert)")
    if "linear" not in kinds(cfg) and m is None:
        p.append("no linear-attention layer and no experts (that is a plainer family's model)")
    g, f = cfg.linear_attention, cfg.resolved_ffn or m
    if g is not None and f is not None and g.conv_activation != f.activation:
        p.append(f"linear_attention.conv_activation={g.conv_activation!r} differs from the FFN's activation "
                 f"{f.activation!r} (Qwen3-Next has one hidden_act)")
    return p


enable_saving("glm4_moe", architecture="Glm4MoeForCausalLM", problems=_glm4_moe_problems, write_config=_glm4_moe_json,
              prepare_state=zero_score_bias)
enable_saving("gpt_oss", architecture="GptOssForCausalLM", problems=_gpt_oss_problems, write_config=_gpt_oss_json)
enable_saving("llama4_text", architecture="Llama4ForCausalLM", problems=_llama4_problems, write_config=_llama4_json)
enable_saving("qwen3_next", architecture="Qwen3NextForCausalLM", problems=_qwen3_next_problems,
              write_config=_qwen3_next_json)
