"""What the Llama-shaped HF families (mistral, mixtral, qwen3, qwen3_moe, olmo2, gemma3_text,
smollm3) read alike: their config.json defaults, HF's per-layer `layer_types`, RoPE with a
family's own default theta, and their tensor names (model.layers.{i}.self_attn / mlp, with
experts stored per expert or fused). Not a family itself: it registers nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...config import ModelConfig, RopeConfig
from ..mapping import Rule, Tensors, rename
from .core import CheckpointError, get_field, read_rope

# HF `layer_types` entries -> ours (transformers/configuration_utils.py ALLOWED_LAYER_TYPES)
HF_LAYER_TYPES = {"full_attention": "global", "sliding_attention": "sliding"}


def with_defaults(hf: dict, defaults: dict[str, Any]) -> dict:
    """config.json over the HF config class's defaults: hub configs may leave out what equals
    the default (Gemma 3's text_config lists only what differs from Gemma3TextConfig), and HF
    fills it in from the class, so we must too. A null in config.json stays null."""
    return {**defaults, **hf}


def layer_types(hf: dict, n_layers: int, derived: list[str]) -> tuple[str, ...]:
    """config.json `layer_types` (HF's names) as ours; `derived` (HF names) when absent, the
    list the HF config class's __post_init__ would build."""
    given = hf.get("layer_types")
    names = derived if given is None else given
    if not isinstance(names, list) or len(names) != n_layers:
        raise CheckpointError(
            f"config.json: layer_types needs one entry per layer (num_hidden_layers={n_layers}), got {names!r}"
        )
    bad = sorted({t for t in names if t not in HF_LAYER_TYPES})
    if bad:
        raise CheckpointError(
            f"config.json: layer_types has {bad}; model_type {hf.get('model_type')!r} supports {sorted(HF_LAYER_TYPES)}"
        )
    return tuple(HF_LAYER_TYPES[t] for t in names)


def sliding_window(hf: dict, types: Iterable[str], key: str = "sliding_window") -> int | None:
    """The window of the sliding layers; an error naming the field when they have none."""
    if "sliding" not in types:
        return None
    w = hf.get(key)
    if not isinstance(w, int) or isinstance(w, bool) or w <= 0:
        raise CheckpointError(f"config.json: layer_types has sliding_attention layers, but {key}={w!r} (expected a positive integer)")
    return w


def rope(hf: dict, default_theta: float) -> RopeConfig:
    """read_rope, with the theta HF's config class uses when config.json gives none
    (`default_theta`: 1e6 for Mixtral, 2e6 for SmolLM3, 10000 for most)."""
    params = {**(hf.get("rope_scaling") or {}), **(hf.get("rope_parameters") or {})}
    if params.get("rope_theta") is None and hf.get("rope_theta") is None:
        hf = {**hf, "rope_theta": default_theta}
    return read_rope(hf)


def positive_int(hf: dict, key: str, default: Any = None) -> int:
    v = get_field(hf, key) if default is None else get_field(hf, key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise CheckpointError(f"config.json: {key} must be a positive integer, got {v!r}")
    return v


def head_dim(hf: dict, default: int | None = None) -> int:
    """head_dim from config.json; absent or null: `default`, else hidden_size // heads (HF's
    `getattr(config, "head_dim", None) or hidden_size // num_attention_heads`)."""
    v = hf.get("head_dim")
    if v is None:
        return default if default is not None else positive_int(hf, "hidden_size") // positive_int(hf, "num_attention_heads")
    return positive_int(hf, "head_dim")


# ---- tensor names ----------------------------------------------------------------------------

ATTN = [(f"{o}.{w}", f"{t}.{w}") for o, t in (("wq", "q_proj"), ("wk", "k_proj"), ("wv", "v_proj"), ("wo", "o_proj"))
        for w in ("weight", "bias")] + [("q_norm.weight", "q_norm.weight"), ("k_norm.weight", "k_norm.weight")]

# our block norms (nn/block.py) -> HF decoder-layer names, per residual layout
PRE_NORMS = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
# OLMo 2 (modeling_olmo2.py Olmo2DecoderLayer): both norms sit on the sublayer outputs
OUTPUT_NORMS = {"attn_post_norm": "post_attention_layernorm", "ffn_post_norm": "post_feedforward_layernorm"}
# Gemma 2/3 (modeling_gemma3.py Gemma3DecoderLayer): post_attention_layernorm is the norm
# *after* attention here, not the one before the MLP as in Llama
SANDWICH_NORMS = {
    "attn_norm": "input_layernorm", "attn_post_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm", "ffn_post_norm": "post_feedforward_layernorm",
}


def decoder_rules(
    norms: dict[str, str], model: str = "model.", head: str = "lm_head.weight", attn: list[tuple[str, str]] = ATTN
) -> list[Rule]:
    """Embedding, final norm, head, block norms, attention (`attn`: our names under attn. ->
    theirs under self_attn.; by default q/k/v/o with biases and QK-norm) and the dense GLU,
    under `model` (Gemma 3's multimodal checkpoints nest it as language_model.model.)."""
    p = model + "layers.{i}."
    rules = [
        rename("tok_emb.weight", model + "embed_tokens.weight"),
        rename("norm.weight", model + "norm.weight"),
        rename("head.weight", head),
    ]
    rules += [rename(f"layers.{{i}}.{ours}.weight", f"{p}{theirs}.weight") for ours, theirs in norms.items()]
    rules += [rename(f"layers.{{i}}.attn.{ours}", f"{p}self_attn.{theirs}") for ours, theirs in attn]
    for ours, theirs in (("gate", "gate_proj"), ("up", "up_proj"), ("down", "down_proj")):
        for w in ("weight", "bias"):
            rules.append(rename(f"layers.{{i}}.ffn.{ours}.{w}", f"{p}mlp.{theirs}.{w}"))
    return rules


def _split_gate_up(ts: Tensors, cfg: ModelConfig) -> Tensors:
    # (E, 2F, D), gate rows first: HF's MergeModulelist + Concatenate(dim=1) of [gate, up]
    # (conversion_mapping.py), read back by `gate, up = linear(x, gate_up_proj[e]).chunk(2, -1)`
    F = cfg.moe.hidden
    return [ts[0][:, :F].contiguous(), ts[0][:, F:].contiguous()]


def expert_rules(router: str, gate: str, up: str, down: str) -> list[Rule]:
    """Routed experts stored per expert ({e} templates, what save_pretrained writes and the hub
    holds), or fused as HF v5 holds them in memory: model.layers.{i}.mlp.gate.weight,
    mlp.experts.gate_up_proj (E, 2F, D) and mlp.experts.down_proj (E, D, F), which
    save_pretrained(save_original_format=False) writes."""
    fused = "model.layers.{i}.mlp."
    ours = "layers.{i}.ffn."
    return [
        Rule((ours + "router.weight",), (router,), alternative=rename(ours + "router.weight", fused + "gate.weight")),
        Rule(
            (ours + "experts.gate", ours + "experts.up"), (gate, up),
            alternative=Rule((ours + "experts.gate", ours + "experts.up"), (fused + "experts.gate_up_proj",), _split_gate_up),
        ),
        Rule((ours + "experts.down",), (down,), alternative=rename(ours + "experts.down", fused + "experts.down_proj")),
    ]


IGNORE = (r".*rotary_emb\.inv_freq$",)  # a recomputed buffer older checkpoints carry
