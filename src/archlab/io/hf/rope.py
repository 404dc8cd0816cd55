"""RoPE in an HF config.json: reading it (v4's rope_theta + rope_scaling, v5's
rope_parameters, partial_rotary_factor as each family's attention uses it) and writing it
back (v5's rope_parameters with the v4 fields beside it)."""

from __future__ import annotations

import warnings
from typing import Any

from ...model_config import ConfigError, ModelConfig, RopeConfig, RopeScaling
from ..safetensors_dir import CheckpointError
from .core import get_field


# ---- reading --------------------------------------------------------------------------------

def rope_dict(hf: dict) -> dict:
    """The RoPE parameters HF's convert_rope_params_to_dict starts from: rope_scaling, when
    given, replaces rope_parameters whole (v4's field wins over v5's); rope_theta and
    partial_rotary_factor at the top of config.json fill only what it lacks (read_rope)."""
    return dict(hf.get("rope_scaling") or hf.get("rope_parameters") or {})


def read_rope(hf: dict, *, honours_partial: bool) -> RopeConfig:
    """Reads both the v4 layout (rope_theta + rope_scaling) and v5's rope_parameters.

    `honours_partial`: the family's HF attention rotates only the first cos.shape[-1] dimensions
    of each head (apply_rotary_pos_emb of modeling_gpt_neox.py, _glm4_moe.py, _qwen3_next.py),
    and its rope init computes frequencies for int(head_dim * partial_rotary_factor) of them:
    what archlab's RopeConfig.partial means. Every other family's attention is Llama's, which
    rotates the whole head whatever partial_rotary_factor says: see _whole_head_partial."""
    try:
        return _read_rope(hf, honours_partial)
    except ConfigError as e:
        raise CheckpointError(f"config.json: rope: {e}") from None


def _whole_head_partial(hf: dict, partial: Any, kind: str) -> float:
    """partial_rotary_factor in a family whose attention rotates the whole head (Llama's
    apply_rotary_pos_emb, GPT-OSS's halves, Llama 4's and DeepSeek-V2's complex product,
    DeepSeek's MLA over its qk_rope_head_dim). HF transformers 5.x, for partial != 1:
    - rope_type 'default': the family's compute_default_rope_parameters never reads it
      (dim = head_dim): the same model as 1.0, so it is read as 1.0, with a warning;
    - any other type: modeling_rope_utils.py's _compute_*_parameters make frequencies for only
      dim = int(head_dim * partial) dimensions, which the whole-head rotation then multiplies
      into every dimension: a size mismatch that fails at the first forward, or, where the sizes
      happen to broadcast (dim = head_dim - 1, or one frequency for GPT-OSS / Llama 4 /
      DeepSeek-V2), the whole head turned at frequencies of a smaller dimension, which RopeConfig
      cannot express. Refused, by name."""
    model_type = hf.get("model_type") or "this model_type"
    if partial == 1:
        return 1.0
    if kind == "default":
        warnings.warn(
            f"{model_type}: partial_rotary_factor={partial!r} in config.json is ignored, as HF transformers ignores it "
            "for rope_type 'default': its attention rotates every dimension of each head "
            "(compute_default_rope_parameters uses the whole head_dim)",
            stacklevel=2,
        )
        return 1.0
    raise CheckpointError(
        f"config.json: partial_rotary_factor={partial!r} with rope_type {kind!r} is not supported for {model_type}: "
        f"HF's {model_type} attention rotates the whole head, while its {kind} rope init computes frequencies for "
        f"only int(head_dim * {partial!r}) dimensions; HF fails on this config (a size mismatch), or where the "
        "sizes happen to broadcast turns the whole head at the frequencies of a smaller dimension, which archlab "
        "cannot express (only GPT-NeoX, GLM-4.5 and Qwen3-Next rotate part of each head)"
    )


def _read_rope(hf: dict, honours_partial: bool) -> RopeConfig:
    params = rope_dict(hf)
    theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
    partial = params.get("partial_rotary_factor", hf.get("partial_rotary_factor"))
    partial = 1.0 if partial is None else partial  # null: unset, as HF's convert_rope_params_to_dict reads it
    kind = params.get("rope_type") or params.get("type") or "default"
    partial = float(partial) if honours_partial else _whole_head_partial(hf, partial, kind)
    max_pos = get_field(hf, "max_position_embeddings")
    # standardize_rope_params, which every rope init runs again once config.json is read: a
    # top-level original_max_position_embeddings (Phi-3's layout) overrides the dict's
    original = hf.get("original_max_position_embeddings") or params.get("original_max_position_embeddings") or max_pos
    if kind == "default":
        scaling = None
    elif kind == "linear":
        scaling = RopeScaling("linear", factor=float(_number(params, "factor")), original_max_seq_len=int(original))
    elif kind == "llama3":
        scaling = RopeScaling(
            "llama3",
            factor=float(_number(params, "factor")),
            original_max_seq_len=int(original),
            low_freq_factor=float(params.get("low_freq_factor", 1.0)),
            high_freq_factor=float(params.get("high_freq_factor", 4.0)),
        )
    elif kind == "yarn":
        factor = params.get("factor") or max_pos / original
        scaling = RopeScaling(
            "yarn",
            factor=float(factor),
            original_max_seq_len=int(original),
            beta_fast=float(params.get("beta_fast") or 32.0),
            beta_slow=float(params.get("beta_slow") or 1.0),
            mscale=params.get("mscale"),
            mscale_all_dim=params.get("mscale_all_dim"),
            attention_factor=params.get("attention_factor"),
            truncate=bool(params.get("truncate", True)),
        )
    elif kind == "dynamic":
        # HF's dynamic NTK grows theta past max_position_embeddings itself (_compute_dynamic_ntk_parameters,
        # dynamic_rope_update's original_max_seq_len), whatever original_max_position_embeddings says
        scaling = RopeScaling("dynamic", factor=float(_number(params, "factor")), original_max_seq_len=int(max_pos))
    elif kind == "longrope":
        # HF _compute_longrope_parameters: factor unset is max_position_embeddings / original
        factor = params.get("factor") or max_pos / original
        n = _factor_count(hf, params, partial)
        scaling = RopeScaling(
            "longrope",
            factor=float(factor),
            original_max_seq_len=int(original),
            attention_factor=params.get("attention_factor"),
            short_factor=_factors(params, "short_factor", n),
            long_factor=_factors(params, "long_factor", n),
        )
    else:
        raise CheckpointError(
            f"config.json: rope type {kind!r} is not supported (supported: default, linear, llama3, yarn, dynamic, longrope)"
        )
    return RopeConfig(theta=theta, partial=partial, scaling=scaling)


def _factor_count(hf: dict, params: dict, partial: float) -> int | None:
    """How many factors longrope takes: one per rotated frequency. HF's _compute_longrope_parameters
    multiplies them into arange(0, dim, 2) with dim = int(head_dim * partial_rotary_factor): a
    single factor broadcasts to every frequency (read so: _factors), several factors against a
    single frequency broadcast into a RoPE of the factors' count at one frequency, which archlab
    cannot express, and other counts fail in HF. Refused here, where the config.json names are
    known (the model config would name its own fields). None: the head size is not known here."""
    n_heads = hf.get("num_attention_heads")
    # DeepSeek's MLA turns qk_rope_head_dim of each head (DeepseekV3Config: head_dim = qk_rope_head_dim)
    head_dim = hf.get("qk_rope_head_dim") or hf.get("head_dim") or (
        hf.get("hidden_size") // n_heads if isinstance(hf.get("hidden_size"), int) and isinstance(n_heads, int) and n_heads > 0
        else None)
    if not isinstance(head_dim, int) or isinstance(head_dim, bool) or head_dim <= 0:
        return None  # the model config checks it once the head size is known
    rotary = int(head_dim * partial)
    n = (rotary + 1) // 2
    for key in ("short_factor", "long_factor"):
        got = params.get(key)
        if isinstance(got, list) and len(got) not in (1, n):
            raise CheckpointError(
                f"config.json: rope_parameters {key} has {len(got)} entries, but RoPE over {rotary} dimensions "
                f"(head_dim {head_dim} x partial_rotary_factor {partial}) has {n} frequencies: longrope needs one factor "
                "per frequency, or a single one for all (HF fails on other counts, or broadcasts them into a RoPE archlab "
                "cannot express)"
            )
    return n


def _number(params: dict, key: str) -> float:
    v = params.get(key)
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise CheckpointError(f"config.json: rope {params.get('rope_type') or params.get('type')} needs a number {key}, got {v!r}")
    return v


def _factors(params: dict, key: str, n: int | None) -> tuple[float, ...]:
    v = params.get(key)
    if not isinstance(v, list) or not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        raise CheckpointError(f"config.json: rope longrope needs {key} as a list of numbers, got {v!r}")
    if n is not None and len(v) == 1:  # HF broadcasts a single factor to all n frequencies (_factor_count)
        v = v * n
    return tuple(float(x) for x in v)


# ---- writing: read_rope's inverse ---------------------------------------------------------

def rope_parameters(rope: RopeConfig, max_seq_len: int) -> dict[str, Any]:
    """v5's rope_parameters of one RoPE (read_rope's inverse)."""
    s = rope.scaling
    params: dict[str, Any] = {"rope_type": "default" if s is None else s.kind, "rope_theta": rope.theta}
    if rope.partial != 1.0:
        params["partial_rotary_factor"] = rope.partial
    if s is not None:
        params["factor"] = s.factor
        if s.kind == "llama3":
            params.update(low_freq_factor=s.low_freq_factor, high_freq_factor=s.high_freq_factor)
        if s.kind == "longrope":
            params.update(short_factor=list(s.short_factor), long_factor=list(s.long_factor))
            if s.attention_factor is not None:
                params["attention_factor"] = s.attention_factor
        if s.kind == "yarn":
            params.update(beta_fast=s.beta_fast, beta_slow=s.beta_slow)
            for key in ("mscale", "mscale_all_dim", "attention_factor"):
                if getattr(s, key) is not None:
                    params[key] = getattr(s, key)
            if not s.truncate:
                params["truncate"] = False
        # llama3 and yarn need it; linear ignores it, but a value other than the reader's
        # default (max_seq_len) is written so that the config reads back equal
        if s.kind not in ("linear", "dynamic") or s.original_max_seq_len != max_seq_len:
            params["original_max_position_embeddings"] = s.original_max_seq_len
    return params


def rope_json(cfg: ModelConfig) -> dict[str, Any]:
    """v5's rope_parameters and, for older transformers, the v4 rope_theta + rope_scaling
    (and partial_rotary_factor where part of each head turns). v5 lets rope_scaling replace
    rope_parameters, so the two must say the same thing."""
    rope, s = cfg.rope, cfg.rope.scaling
    params = rope_parameters(rope, cfg.max_seq_len)
    legacy = None
    if s is not None:
        skip = ("rope_type", "rope_theta", "partial_rotary_factor")
        legacy = {"rope_type": s.kind, "type": s.kind, **{k: v for k, v in params.items() if k not in skip}}
    out = {"rope_theta": rope.theta, "rope_parameters": params, "rope_scaling": legacy}
    if rope.partial != 1.0:
        out["partial_rotary_factor"] = rope.partial
    return out
