"""Saving as the Llama-shaped HF families that do not write themselves (mistral, mixtral, qwen3,
qwen3_moe, olmo2, gemma3_text, smollm3): each family's config.json, the inverse of its reader,
and what a config must hold to be that family (`problems`: the parts its model class has no
field for, each named). Whatever a `problems` list misses, the read-back check of
save.choose_family still catches, field by field: a family is chosen only when the config.json
written here reads back as the model. The families with experts or mixers of their own
(glm4_moe, gpt_oss, llama4_text, qwen3_next) are in moe_save.py, qwen2 and qwen2_moe in
qwen2_save.py."""

from __future__ import annotations

from typing import Any

from ...model_config import SQRT_D_MODEL, ModelConfig
from .core import HF_ACTIVATION, enable_saving
from .rope import rope_json, rope_parameters

# our layer kinds -> HF `layer_types` names (configuration_utils.py ALLOWED_LAYER_TYPES)
HF_KINDS = {"global": "full_attention", "sliding": "sliding_attention", "chunked": "chunked_attention",
            "linear": "linear_attention"}


def kinds(cfg: ModelConfig) -> list[str]:
    return [s.kind for s in cfg.layers]


def hf_layer_types(cfg: ModelConfig) -> list[str]:
    return [HF_KINDS[k] for k in kinds(cfg)]


def window(cfg: ModelConfig) -> int | None:
    return next((s.window for s in cfg.layers if s.kind == "sliding"), None)


def dense_or_experts(cfg: ModelConfig):
    """The FFN whose width and activation intermediate_size / hidden_act describe."""
    return cfg.resolved_ffn or cfg.moe


def base_json(cfg: ModelConfig, act_key: str = "hidden_act") -> dict[str, Any]:
    """The fields every Llama-shaped config.json has (llama_like_config's inverse)."""
    a, f = cfg.resolved_attention, dense_or_experts(cfg)
    return {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": f.hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": a.n_heads,
        "num_key_value_heads": a.n_kv_heads,
        "head_dim": a.head_dim,
        act_key: HF_ACTIVATION[f.activation],
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm.eps,
        **(rope_json(cfg) if cfg.position_kind == "rope" else {}),
        "attention_bias": a.qkv_bias,
        "attention_dropout": 0.0,
    }


def llama_shape_problems(cfg: ModelConfig, name: str, *, block: str = "pre", unit_offset: bool = False,
                         layer_kinds: tuple[str, ...] = ("global",), moe: bool | None = False,
                         mlp_bias: bool = False, partial_rope: bool = False) -> list[str]:
    """What no Llama-shaped family can express but the ones that say so: `block`, the RMSNorm's
    offset, the layer kinds allowed, whether it has experts (True: only, None: either), and
    whether its dense MLP may have biases (`mlp_bias`) and its RoPE turn part of each head
    (`partial_rope`)."""
    p = []
    a, f = cfg.resolved_attention, cfg.resolved_ffn
    if cfg.block != block:
        p.append(f"block={cfg.block!r} ({name}'s residual layout is block={block!r})")
    if cfg.norm.kind != "rmsnorm" or cfg.norm.unit_offset != unit_offset or cfg.norm.bias:
        p.append(f"norm={cfg.norm} ({name} uses RMSNorm{' scaled by (1 + w)' if unit_offset else ''})")
    if cfg.position_kind != "rope":
        p.append(f"position={cfg.position!r} ({name} has rotary positions)")
    elif not partial_rope and (cfg.rope.partial != 1.0 or (cfg.rope_local is not None and cfg.rope_local.partial != 1.0)):
        # its HF attention rotates the whole head whatever partial_rotary_factor says: HF
        # ignores the field with rope_type default and fails with the others (io/hf/core.py
        # _whole_head_partial, which reads it so), so no config.json says "rotate part of it"
        p.append(f"rope.partial={cfg.rope.partial} ({name} rotates the whole head)")
    bad = sorted(set(kinds(cfg)) - set(layer_kinds))
    if bad:
        p.append(f"layer_types has {bad} layers ({name} has only {list(layer_kinds)})")
    if a.kind != "attention":
        p.append(f"attention kind {a.kind!r} ({name} has grouped-query attention)")
    elif a.sinks:
        p.append(f"attention.sinks=True ({name} has no attention sinks)")
    if f is not None and (f.kind != "glu" or (f.bias and not mlp_bias)):
        p.append(f"ffn kind={f.kind!r} bias={f.bias} ({name}'s MLP is a GLU{'' if mlp_bias else ' without biases'})")
    if moe is False and cfg.moe is not None:
        p.append(f"moe ({name} has no mixture of experts)")
    if moe is True and cfg.moe is None:
        p.append(f"moe=None ({name}'s layers are mixtures of experts)")
    return p


def all_moe(cfg: ModelConfig, name: str) -> list[str]:
    plan = [s.ffn for s in cfg.layers]
    return [f"ffn_types={plan} (every {name} layer is a mixture of experts)"] if cfg.moe and "dense" in plan else []


def _one_window(cfg: ModelConfig, name: str) -> list[str]:
    ks = set(kinds(cfg))
    return [f"layer_types={kinds(cfg)} ({name} slides in every layer or in none)"] if len(ks) > 1 else []


# ---- mistral, mixtral (configuration_mistral.py, configuration_mixtral.py) ------------------

def _mistral_problems(cfg: ModelConfig) -> list[str]:
    return llama_shape_problems(cfg, "Mistral", layer_kinds=("global", "sliding")) + _one_window(cfg, "Mistral")


def _mixtral_problems(cfg: ModelConfig) -> list[str]:
    p = llama_shape_problems(cfg, "Mixtral", layer_kinds=("global", "sliding"), moe=True) + _one_window(cfg, "Mixtral")
    p += all_moe(cfg, "Mixtral")
    return p


def _mistral_json(cfg: ModelConfig) -> dict[str, Any]:
    # MistralConfig's sliding_window defaults to 4096: no window must be written as null
    return {**base_json(cfg), "sliding_window": window(cfg)}


def _mixtral_json(cfg: ModelConfig) -> dict[str, Any]:
    m = cfg.moe
    return {**_mistral_json(cfg), "num_local_experts": m.n_experts, "num_experts_per_tok": m.top_k,
            "router_jitter_noise": 0.0, "output_router_logits": False}


# ---- qwen3, qwen3_moe (configuration_qwen3.py, configuration_qwen3_moe.py) --------------------

def qwen_window(cfg: ModelConfig) -> dict[str, Any]:
    """The sliding-window fields of the Qwen config classes (Qwen2/Qwen3: sliding from
    max_window_layers on), with the explicit layer_types that v5 reads first."""
    w = window(cfg)
    first = next((s.index for s in cfg.layers if s.kind == "sliding"), cfg.n_layers)
    return {"use_sliding_window": w is not None, "sliding_window": w, "max_window_layers": first,
            "layer_types": hf_layer_types(cfg)}


def _qwen3_problems(cfg: ModelConfig) -> list[str]:
    p = llama_shape_problems(cfg, "Qwen3", layer_kinds=("global", "sliding"))
    if cfg.resolved_attention.kind == "attention" and cfg.resolved_attention.qk_norm is None:
        p.append("attention.qk_norm=None (Qwen3 normalises every head's query and key)")
    return p


def _qwen3_moe_problems(cfg: ModelConfig) -> list[str]:
    p = llama_shape_problems(cfg, "Qwen3-MoE", layer_kinds=("global", "sliding"), moe=None) + _one_window(cfg, "Qwen3-MoE")
    if cfg.moe is None:
        p.append("moe=None (a Qwen3-MoE without experts is a qwen3)")
    if cfg.resolved_attention.kind == "attention" and cfg.resolved_attention.qk_norm is None:
        p.append("attention.qk_norm=None (Qwen3-MoE normalises every head's query and key)")
    return p


def _qwen3_json(cfg: ModelConfig) -> dict[str, Any]:
    return {**base_json(cfg), **qwen_window(cfg)}


def _qwen3_moe_json(cfg: ModelConfig) -> dict[str, Any]:
    m = cfg.moe
    hf = {**base_json(cfg), **qwen_window(cfg)}
    del hf["layer_types"], hf["max_window_layers"]  # Qwen3MoeConfig slides in every layer or none
    return {
        **hf, "num_experts": m.n_experts, "num_experts_per_tok": m.top_k, "moe_intermediate_size": m.hidden,
        "norm_topk_prob": m.router.norm_topk, "decoder_sparse_step": 1,
        "mlp_only_layers": [s.index for s in cfg.layers if s.ffn == "dense"],
        "router_aux_loss_coef": 0.0, "output_router_logits": False,
    }


# ---- olmo2 (configuration_olmo2.py), smollm3 (configuration_smollm3.py) ------------------------

def _olmo2_json(cfg: ModelConfig) -> dict[str, Any]:
    return base_json(cfg)


def _smollm3_json(cfg: ModelConfig) -> dict[str, Any]:
    w = window(cfg)
    return {
        **base_json(cfg), "mlp_bias": cfg.resolved_ffn.bias, "use_sliding_window": w is not None, "sliding_window": w,
        "no_rope_layers": [int(s.rope is not None) for s in cfg.layers], "layer_types": hf_layer_types(cfg),
    }


# ---- gemma3_text (configuration_gemma3.py) ----------------------------------------------------

def _gemma3_problems(cfg: ModelConfig) -> list[str]:
    p = llama_shape_problems(cfg, "Gemma 3", block="sandwich", unit_offset=True, layer_kinds=("global", "sliding"))
    if cfg.embed_scale != SQRT_D_MODEL and cfg.resolved().embed_scale != cfg.d_model**0.5:
        p.append(f"embed_scale={cfg.embed_scale!r} (Gemma 3 scales its embeddings by sqrt(d_model))")
    a = cfg.resolved_attention
    if a.kind == "attention" and a.scale is not None and not isinstance(_pre_attn_scalar(a.scale), int):
        # Gemma3TextConfig.query_pre_attn_scalar is typed int: HF refuses to load 11.11
        p.append(f"attention.scale={a.scale} (Gemma 3 scales by query_pre_attn_scalar ** -0.5, a whole number)")
    return p


def _pre_attn_scalar(scale: float) -> float | int:
    """Gemma3Attention scales by query_pre_attn_scalar ** -0.5; published values are whole
    numbers (head_dim, or 168 for Gemma-3-27B), kept whole so that the scale reads back exactly."""
    q = scale**-2
    return round(q) if abs(q - round(q)) < 1e-9 * q else q


def _gemma3_json(cfg: ModelConfig) -> dict[str, Any]:
    a = cfg.resolved_attention
    hf = base_json(cfg, act_key="hidden_activation")
    for k in ("rope_theta", "rope_scaling", "partial_rotary_factor"):
        hf.pop(k, None)  # Gemma 3 reads rope_scaling into the global layers' RoPE: one source only
    local = cfg.rope_local or cfg.rope
    hf["rope_parameters"] = {"full_attention": rope_parameters(cfg.rope, cfg.max_seq_len),
                             "sliding_attention": rope_parameters(local, cfg.max_seq_len)}
    return {
        **hf,
        "layer_types": hf_layer_types(cfg),
        "sliding_window": window(cfg) or 4096,  # unused without sliding layers; Gemma3TextConfig's default
        "query_pre_attn_scalar": _pre_attn_scalar(a.scale if a.scale is not None else a.head_dim**-0.5),
        "final_logit_softcapping": cfg.logit_softcap,
        "attn_logit_softcapping": None,
        "use_bidirectional_attention": False,
    }


enable_saving("mistral", architecture="MistralForCausalLM", problems=_mistral_problems, write_config=_mistral_json)
enable_saving("mixtral", architecture="MixtralForCausalLM", problems=_mixtral_problems, write_config=_mixtral_json)
enable_saving("qwen3", architecture="Qwen3ForCausalLM", problems=_qwen3_problems, write_config=_qwen3_json)
enable_saving("qwen3_moe", architecture="Qwen3MoeForCausalLM", problems=_qwen3_moe_problems, write_config=_qwen3_moe_json)
enable_saving("olmo2", architecture="Olmo2ForCausalLM", write_config=_olmo2_json,
              problems=lambda cfg: llama_shape_problems(cfg, "OLMo 2", block="output"))
enable_saving("gemma3_text", architecture="Gemma3ForCausalLM", problems=_gemma3_problems, write_config=_gemma3_json)
enable_saving("smollm3", architecture="SmolLM3ForCausalLM", write_config=_smollm3_json,
              problems=lambda cfg: llama_shape_problems(cfg, "SmolLM3", layer_kinds=("global", "sliding"), mlp_bias=True))
