"""Typed reading of config.json values: one check of every field the readers read, before
any reader sees them, so that a hostile or mistaken value is refused naming the field, its
value and what was expected, never a TypeError from deep inside a reader or, worse, a silent
difference ("false" is a true string; NaN passes every `> 0` test by failing it).

HF's own config classes are `@strict` dataclasses (huggingface_hub.dataclasses.strict, on
transformers' PreTrainedConfig): a string for a bool field (`tie_word_embeddings: "false"`,
`scale_attn_weights: ""`) or a float for an int field (`num_hidden_layers: 2.5`) is refused
there too, so refusing them here is no difference from the reference. HF accepts NaN, inf and
negative sizes, which no model can run with: refused here as well."""

from __future__ import annotations

import math
from typing import Any, Callable

from ...model_config import BOUNDS
from ..safetensors_dir import CheckpointError

# torch sizes are int64, but no dimension of a real model nears 2**31; a larger one is a
# hostile file (an allocation of that size, or an OverflowError in torch).
INT_MAX = 2**31 - 1
# Reading a config costs time per layer (its per-layer tuples): 2**31 layers would hang the
# reader for hours. One bound for every source of a config: model_config.BOUNDS (4096 layers,
# 32x the deepest published decoder, Llama 3.1 405B's 126).
LAYERS_MAX = BOUNDS["layers"]


def _bad(key: str, v: Any, expected: str) -> CheckpointError:
    shown = repr(v)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return CheckpointError(f"config.json: {key}={shown} ({type(v).__name__}); expected {expected}")


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def bool_value(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise _bad(key, v, "true or false (a JSON bool; HF's config classes refuse anything else)")
    return v


def int_value(key: str, v: Any, lo: int = 1, hi: int = INT_MAX) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise _bad(key, v, f"an integer from {lo} to {hi}")
    return v


def float_value(key: str, v: Any, positive: bool = True) -> float:
    if not is_number(v) or not math.isfinite(v) or (positive and v <= 0) or (not positive and v < 0):
        raise _bad(key, v, f"a finite number {'> 0' if positive else '>= 0'}")
    return float(v)


def str_value(key: str, v: Any) -> str:
    if not isinstance(v, str):
        raise _bad(key, v, "a string")
    return v


def dict_value(key: str, v: Any) -> dict:
    if not isinstance(v, dict):
        raise _bad(key, v, "a mapping (a JSON object) or null")
    return v


_MISSING = object()


def _get(hf: dict, key: str, default: Any) -> Any:
    v = hf.get(key)
    if v is not None:
        return v
    if default is _MISSING:
        raise CheckpointError(f"config.json: field {key!r} is missing (needed for model_type {hf.get('model_type')!r})")
    return default


def bool_field(hf: dict, key: str, default: Any = _MISSING) -> bool:
    """A true/false field; absent or null: `default`."""
    return bool_value(key, _get(hf, key, default))


def int_field(hf: dict, key: str, default: Any = _MISSING, lo: int = 1, hi: int = INT_MAX) -> int:
    return int_value(key, _get(hf, key, default), lo, hi)


def finite_float(hf: dict, key: str, default: Any = _MISSING, positive: bool = True) -> float:
    return float_value(key, _get(hf, key, default), positive)


def _kinds(check: Callable[[str, Any], Any], *keys: str) -> dict[str, Callable[[str, Any], Any]]:
    return {k: check for k in keys}


def _nonneg_int(k: str, v: Any) -> int:
    return int_value(k, v, lo=0)


def _nonneg_float(k: str, v: Any) -> float:
    return float_value(k, v, positive=False)


def _layers(k: str, v: Any) -> int:
    return int_value(k, v, hi=LAYERS_MAX)


def _list_of(kind: type, what: str) -> Callable[[str, Any], list]:
    def check(k: str, v: Any) -> list:
        if not isinstance(v, list) or not all(isinstance(x, kind) and not isinstance(x, bool) for x in v):
            raise _bad(k, v, f"a list of {what} or null")
        return v
    return check


def _fraction(k: str, v: Any) -> float:
    f = float_value(k, v)
    if f > 1:
        raise _bad(k, v, "a fraction in (0, 1]")
    return f


# Every config.json field a reader reads (grep `hf.get(` / `get_field(` under io/hf/), by the
# type HF's config classes annotate it with. Sizes that a published model may set to 0 (no
# shared expert, no dense first layers, qk_nope_head_dim=0) may be 0; the readers check the
# rest of their meaning. A null value is left to the reader (absent, for most).
FIELDS: dict[str, Callable[[str, Any], Any]] = {
    **_kinds(bool_value, "tie_word_embeddings", "scale_attn_weights", "attention_bias", "mlp_bias", "norm_topk_prob",
             "rope_interleave", "use_parallel_residual", "use_sliding_window", "scale_attn_by_inverse_layer_idx",
             "reorder_and_upcast_attn", "use_qk_norm", "qkv_bias", "apply_residual_connection_post_layernorm"),
    **_kinds(int_value, "vocab_size", "hidden_size", "intermediate_size", "num_attention_heads",
             "num_key_value_heads", "max_position_embeddings", "head_dim", "n_positions", "n_embd", "n_head",
             "n_inner", "moe_intermediate_size", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "v_head_dim",
             "n_group", "topk_group", "num_experts_per_tok", "num_local_experts", "original_max_position_embeddings",
             "intermediate_size_mlp", "moe_layer_freq", "decoder_sparse_step", "attention_chunk_size",
             "linear_num_value_heads", "linear_num_key_heads", "linear_key_head_dim", "linear_value_head_dim",
             "linear_conv_kernel_dim", "full_attention_interval", "n_ctx"),
    **_kinds(_layers, "num_hidden_layers", "n_layer"),
    **_kinds(_nonneg_int, "qk_nope_head_dim", "n_shared_experts", "n_routed_experts", "num_experts",
             "first_k_dense_replace", "num_nextn_predict_layers", "num_mtp_layers", "max_window_layers",
             "sliding_window", "shared_expert_intermediate_size"),
    **_kinds(float_value, "rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps", "rope_theta", "rotary_emb_base",
             "routed_scaling_factor", "rope_local_base_freq", "query_pre_attn_scalar", "floor_scale", "attn_scale"),
    # Gemma 3 divides by these when they are not null (Gemma3ForCausalLM.forward, eager_attention_forward): 0 is NaN
    **_kinds(float_value, "final_logit_softcapping", "attn_logit_softcapping"),
    **_kinds(_fraction, "partial_rotary_factor", "rotary_pct"),
    **_kinds(str_value, "hidden_act", "activation_function", "topk_method", "scoring_func", "hidden_activation", "afn"),
    **_kinds(dict_value, "rope_parameters", "rope_scaling", "quantization_config", "text_config"),
    **_kinds(_list_of(str, "strings"), "layer_types"),
    **_kinds(_list_of(int, "integers"), "no_rope_layers", "mlp_only_layers", "moe_layers"),
}

# inside rope_parameters / rope_scaling (and each of Gemma 3's per-layer-kind dicts)
ROPE_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    **_kinds(float_value, "factor", "rope_theta", "low_freq_factor", "high_freq_factor", "attention_factor"),
    **_kinds(_nonneg_float, "mscale", "mscale_all_dim", "beta_fast", "beta_slow"),
    **_kinds(_fraction, "partial_rotary_factor"),
    **_kinds(int_value, "original_max_position_embeddings"),
    **_kinds(str_value, "rope_type", "type"),
    **_kinds(bool_value, "truncate"),
}


def _check_rope(where: str, d: dict) -> None:
    if any(isinstance(v, dict) for v in d.values()):  # per layer kind: {"full_attention": {...}, ...}
        for kind, sub in d.items():
            _check_rope(f"{where}.{kind}", dict_value(f"{where}.{kind}", sub))
        return
    for k, v in d.items():
        if k in ROPE_FIELDS and v is not None:
            ROPE_FIELDS[k](f"{where}.{k}", v)


# HF annotates these `bool | None` (DeepSeek's classes: null means the family's default); every
# other true/false field is a plain `bool`, and HF's strict config classes refuse null there,
# which a reader taking null as "absent" would turn into its default (true, for some).
NULLABLE_BOOLS = {"deepseek_v2": {"norm_topk_prob"}, "deepseek_v3": {"norm_topk_prob", "rope_interleave"},
                  "kimi_k2": {"norm_topk_prob", "rope_interleave"}}


def check_values(hf: dict, where: str = "") -> None:
    """Refuse, naming the field, any value of the wrong type or out of range among the fields
    the readers read (FIELDS), at the top level and in a multimodal config's text_config."""
    for k, v in hf.items():
        if v is None and FIELDS.get(k) is bool_value and k not in NULLABLE_BOOLS.get(hf.get("model_type"), ()):
            raise _bad(where + k, v, "true or false (HF's config classes refuse null for this field)")
        if k in FIELDS and v is not None:
            FIELDS[k](where + k, v)
    for k in ("rope_parameters", "rope_scaling"):
        if isinstance(hf.get(k), dict):
            _check_rope(where + k, hf[k])
    if isinstance(hf.get("text_config"), dict):
        check_values(hf["text_config"], where + "text_config.")
