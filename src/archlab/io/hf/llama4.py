"""HF `llama4_text` (Llama4ForCausalLM) and the text part of `llama4` (Llama 4 Scout /
Maverick, Llama4ForConditionalGeneration: config.json nests it as text_config, and the
weights live under language_model.*; the vision encoder and projector are ignored).

# diff with llama (modeling_llama4.py)
- RoPE in complex form (apply_rotary_emb: `view_as_complex` pairs adjacent features), so
  q_proj / k_proj rows are permuted per head to our rotate-half layout on load; q.k and the
  per-head L2 norm are unchanged by it, so NoPE layers are permuted alike.
- per layer: no_rope_layers[i] == 1 means "uses RoPE"; layer_types "chunked_attention"
  layers attend within blocks of attention_chunk_size, "full_attention" ones globally.
- NoPE layers scale queries by 1 + attn_scale * log1p(floor((p + 1) / floor_scale))
  (attn_temperature_tuning); HF counts p from the cache length, we from each row's first
  real token: the same without left padding.
- use_qk_norm: a weightless L2 norm (Llama4TextL2Norm) on q and k, RoPE layers only, after
  the rotation (qk_norm_after_rope). A rotation keeps the norm, but the rotation of a scaled
  RoPE also multiplies by its attention factor (YaRN's mscale on freqs_cis), which the norm
  then cancels: before the rotation, it would not.
- Llama4TextMoe in the moe_layers (range(step - 1, n, step) from interleave_moe_layer_step):
  the router's top-k logits go through a sigmoid and scale the token *before* its expert
  (weights on the input), and a shared expert as wide as a routed one always runs; the other
  layers are dense GLUs of intermediate_size_mlp. Experts are stored fused: gate_up_proj
  (E, D, 2F) with [gate | up] halves (`gate_up.chunk(2, -1)`) and down_proj (E, F, D),
  applied as `x @ w` (Llama4TextExperts.forward).
"""

from __future__ import annotations

import torch

from ...model_config import AttnTemperature, ConfigError, ModelConfig, MoEConfig, NormConfig, RouterConfig
from ..layouts import rope_halves_to_pairs, rope_pairs_to_halves, transpose_experts
from ..mapping import Rule, Tensors, rename
from .core import LOCAL_MOE_NAMES, CheckpointError, HFFamily, activation, get_field, in_config_json_names, register
from .llama_like import flag, llama_like_config, positive_int, with_defaults
from .llama_rules import IGNORE, PRE_NORMS, decoder_rules, shared_expert_rules

# Llama4TextConfig's defaults (configuration_llama4.py) for what config.json may leave out
_DEFAULTS = {
    "num_key_value_heads": 8, "head_dim": 128, "hidden_act": "silu", "max_position_embeddings": 4096 * 32,
    "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "num_experts_per_tok": 1, "num_local_experts": 16,
    "interleave_moe_layer_step": 1, "use_qk_norm": True, "no_rope_layer_interval": 4,
    "attention_chunk_size": 8192, "attn_temperature_tuning": True, "floor_scale": 8192, "attn_scale": 0.1,
    "attention_bias": False, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
}
_LAYER_TYPES = {"chunked_attention": "chunked", "full_attention": "global"}


def _text_config(hf: dict) -> dict:
    """The text model's config: config.json itself (llama4_text) or its text_config (llama4)."""
    if hf.get("model_type") != "llama4":
        return hf
    text = hf.get("text_config")
    if not isinstance(text, dict):
        raise CheckpointError(f"config.json: model_type 'llama4' needs a text_config mapping, got {text!r}")
    # Meta's configs keep tie_word_embeddings at the top level, beside text_config
    outer = {"tie_word_embeddings": hf["tie_word_embeddings"]} if "tie_word_embeddings" in hf else {}
    return {**outer, **text, "model_type": "llama4_text"}


def _per_layer(hf: dict, key: str, n_layers: int, derived: list, empty_means_derived: bool = False) -> list:
    """A per-layer list from config.json, or the one Llama4TextConfig.__post_init__ derives
    when it is null (or, for no_rope_layers, empty: Meta's hub configs say `[]`)."""
    given = hf.get(key)
    names = derived if given is None or (empty_means_derived and given == []) else given
    if not isinstance(names, list) or len(names) != n_layers:
        raise CheckpointError(f"config.json: {key} needs one entry per layer (num_hidden_layers={n_layers}), got {names!r}")
    return names


def _llama4_config(hf: dict) -> ModelConfig:
    hf = with_defaults(_text_config(hf), _DEFAULTS)
    n = positive_int(hf, "num_hidden_layers")
    interval = positive_int(hf, "no_rope_layer_interval")
    uses_rope = _per_layer(hf, "no_rope_layers", n, [int((i + 1) % interval != 0) for i in range(n)], True)
    if any(r not in (0, 1) for r in uses_rope):
        raise CheckpointError(f"config.json: no_rope_layers entries must be 0 (NoPE) or 1 (RoPE), got {uses_rope!r}")
    types = _per_layer(hf, "layer_types", n, ["chunked_attention" if r else "full_attention" for r in uses_rope])
    bad = sorted({t for t in types if t not in _LAYER_TYPES})
    if bad:
        raise CheckpointError(f"config.json: layer_types has {bad}; llama4 supports {sorted(_LAYER_TYPES)}")
    chunk = hf.get("attention_chunk_size")
    if "chunked_attention" in types and (not isinstance(chunk, int) or isinstance(chunk, bool) or chunk <= 0):
        raise CheckpointError(
            f"config.json: layer_types has chunked_attention layers, but attention_chunk_size={chunk!r} (expected a positive integer)"
        )
    step = positive_int(hf, "interleave_moe_layer_step")
    moe_layers = hf.get("moe_layers")
    if moe_layers is None:
        moe_layers = list(range(step - 1, n, step))
    if not isinstance(moe_layers, list) or any(not isinstance(i, int) or not 0 <= i < n for i in moe_layers):
        raise CheckpointError(f"config.json: moe_layers must list layer indices below num_hidden_layers={n}, got {moe_layers!r}")
    act = activation(hf, "hidden_act")
    eps = get_field(hf, "rms_norm_eps")
    moe = None
    if moe_layers:
        try:
            moe = MoEConfig(
                n_experts=positive_int(hf, "num_local_experts"),
                top_k=positive_int(hf, "num_experts_per_tok"),
                hidden=positive_int(hf, "intermediate_size"),
                n_shared=1,  # Llama4TextMoe.shared_expert: one GLU of intermediate_size
                activation=act,
                router=RouterConfig(score="sigmoid", weights_on="input"),
            )
        except ConfigError as e:
            raise in_config_json_names(e, LOCAL_MOE_NAMES) from None
    temperature = None
    tuning = hf.get("attn_temperature_tuning")
    # Meta's hub configs say `"attn_temperature_tuning": 4`; HF only tests it for truth
    if not isinstance(tuning, (bool, int)):
        raise CheckpointError(f"config.json: attn_temperature_tuning must be true or false, got {tuning!r}")
    # Llama4TextAttention tunes only NoPE layers (`if self.attn_temperature_tuning and not
    # self.use_rope`): with none, HF runs as if tuning were off, and so does archlab
    if tuning and 0 in uses_rope:
        floor_scale, scale = hf.get("floor_scale"), hf.get("attn_scale")
        if not isinstance(floor_scale, (int, float)) or isinstance(floor_scale, bool) or floor_scale <= 0:
            raise CheckpointError(f"config.json: floor_scale must be a positive number, got {floor_scale!r}")
        if not isinstance(scale, (int, float)) or isinstance(scale, bool):
            raise CheckpointError(f"config.json: attn_scale must be a number, got {scale!r}")
        temperature = AttnTemperature(floor_scale=float(floor_scale), scale=float(scale))
    return llama_like_config(
        hf, family="llama4", theta=500000.0, n_layers=n, ffn={"hidden": positive_int(hf, "intermediate_size_mlp")}, moe=moe,
        attention={
            "chunk": chunk if "chunked_attention" in types else None,
            "qk_norm": NormConfig("l2norm", eps=eps) if flag(hf, "use_qk_norm") else None,
            # Llama4TextAttention builds qk_norm only `if config.use_qk_norm and self.use_rope`; a
            # setting of the QK-norm, so only where there is one
            "qk_norm_in_nope_layers": not flag(hf, "use_qk_norm"),
            "qk_norm_after_rope": flag(hf, "use_qk_norm"),
            "temperature": temperature,
        },
        layer_types=tuple(_LAYER_TYPES[t] for t in types),
        ffn_types=tuple("moe" if i in set(moe_layers) else "dense" for i in range(n)),
        rope_layers=tuple(bool(r) for r in uses_rope),
    )


def _split_gate_up(ts: Tensors, cfg: ModelConfig) -> Tensors:
    w = ts[0]  # (E, D, 2F): [gate | up] along the last axis
    gate, up = w.chunk(2, dim=-1)
    return [gate.transpose(1, 2).contiguous(), up.transpose(1, 2).contiguous()]  # (E, F, D) each


def _join_gate_up(ts: Tensors, cfg: ModelConfig) -> Tensors:
    return [torch.cat([t.transpose(1, 2) for t in ts], dim=-1).contiguous()]  # (E, F, D) x 2 -> (E, D, 2F)


def _llama4_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    multimodal = hf.get("model_type") == "llama4"
    model = "language_model.model." if multimodal else "model."
    f = model + "layers.{i}.feed_forward."
    rules = decoder_rules(
        PRE_NORMS, model=model, head="language_model.lm_head.weight" if multimodal else "lm_head.weight", mlp="feed_forward",
        # complex-form RoPE (view_as_complex pairs adjacent features): q/k rows to rotate-half
        load={"wq": rope_pairs_to_halves(lambda c: c.resolved_attention.n_heads),
              "wk": rope_pairs_to_halves(lambda c: c.resolved_attention.n_kv_heads)},
        save={"wq": rope_halves_to_pairs(lambda c: c.resolved_attention.n_heads),
              "wk": rope_halves_to_pairs(lambda c: c.resolved_attention.n_kv_heads)},
    )
    return rules + shared_expert_rules(f + "shared_expert.") + [
        rename("layers.{i}.ffn.router.weight", f + "router.weight"),
        Rule(("layers.{i}.ffn.experts.gate", "layers.{i}.ffn.experts.up"), (f + "experts.gate_up_proj",), _split_gate_up, _join_gate_up),
        rename("layers.{i}.ffn.experts.down", f + "experts.down_proj", transpose_experts, transpose_experts),  # (E, F, D) -> (E, D, F)
    ]


def _vision_ignore(hf: dict, cfg: ModelConfig) -> list[str]:
    """A multimodal checkpoint's image encoder and projector: not part of the text model."""
    return [r"^vision_model\.", r"^multi_modal_projector\."] if hf.get("model_type") == "llama4" else []


register(HFFamily(("llama4_text", "llama4"), _llama4_config, _llama4_rules, ignore=IGNORE, extra_ignore=_vision_ignore))
