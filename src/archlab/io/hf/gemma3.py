"""HF `gemma3_text` (Gemma3ForCausalLM) and the text decoder of `gemma3`
(Gemma3ForConditionalGeneration, whose config.json nests it as `text_config`).

# diff with llama (modeling_gemma3.py, configuration_gemma3.py)
- Sandwich norms: input_layernorm and post_attention_layernorm around attention,
  pre_feedforward_layernorm and post_feedforward_layernorm around the MLP (block="sandwich").
- Gemma3RMSNorm scales by (1 + w) in float32 (unit_offset), also as QK-norm over each head.
- Sliding and global layers by `layer_types`, or by `sliding_window_pattern` (default 6:
  layer i global when (i + 1) % 6 == 0). Sliding layers rotate with their own RoPE: v5's
  rope_parameters["sliding_attention"], or v4's rope_local_base_freq (default 1e4) without
  scaling; global layers with rope_parameters["full_attention"], or v4's rope_theta (default
  1e6) and rope_scaling.
- Softmax scale query_pre_attn_scalar ** -0.5; GeGLU with `hidden_activation`; embeddings
  times sqrt(hidden_size), rounded to the weight dtype (Gemma3TextScaledWordEmbedding);
  logits squashed by final_logit_softcapping where set.
- attn_logit_softcapping is read by HF but never used: Gemma3Attention keeps it and does not
  pass it to the attention function (unlike Gemma2Attention). We follow HF and leave the
  attention uncapped, with a warning when config.json sets it.
- Gemma3TextConfig's defaults fill what config.json leaves out (the hub's text_config lists
  only what differs from them).
"""

from __future__ import annotations

import warnings

from ...model_config import SQRT_D_MODEL, ModelConfig
from ..mapping import Rule
from .core import CheckpointError, HFFamily, get_field, register
from .rope import read_rope
from .llama_like import layer_types, llama_like_config, positive_int, rms_norm, sliding_window, with_defaults
from .llama_rules import IGNORE, SANDWICH_NORMS, decoder_rules

# Gemma3TextConfig defaults (configuration_gemma3.py)
_TEXT_DEFAULTS = {
    "vocab_size": 262_208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 131_072, "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "attention_bias": False,
    "query_pre_attn_scalar": 256, "sliding_window": 4096, "final_logit_softcapping": None,
    "attn_logit_softcapping": None, "use_bidirectional_attention": False, "sliding_window_pattern": 6,
}
_THETA = {"full_attention": 1_000_000.0, "sliding_attention": 10_000.0}


def _ropes(hf: dict) -> dict[str, dict]:
    """RoPE parameters per HF layer type, as Gemma3TextConfig.convert_rope_params_to_dict
    settles them: v5's nested rope_parameters, v4's rope_scaling applied to the global layers
    only, the thetas from rope_theta / rope_local_base_freq or the class defaults."""
    params = hf.get("rope_parameters") or {}
    if not isinstance(params, dict) or not set(params) <= set(_THETA):
        raise CheckpointError(
            f"config.json: rope_parameters for gemma3 must be keyed by layer type {sorted(_THETA)}, got {params!r}"
        )
    full = {**(params.get("full_attention") or {"rope_type": "default"}), **(hf.get("rope_scaling") or {})}
    sliding = dict(params.get("sliding_attention") or {"rope_type": "default"})
    full.setdefault("rope_theta", hf.get("rope_theta") or _THETA["full_attention"])
    sliding.setdefault("rope_theta", hf.get("rope_local_base_freq") or _THETA["sliding_attention"])
    if hf.get("partial_rotary_factor") is not None:  # standardize_rope_params gives it to every layer type
        for p in (full, sliding):
            p.setdefault("partial_rotary_factor", hf["partial_rotary_factor"])
    for kind, p in (("full_attention", full), ("sliding_attention", sliding)):
        # HF's _compute_yarn_parameters reads `truncate` from the top-level rope_parameters
        # (modeling_rope_utils.py: config.rope_parameters.get("truncate", True)), which for Gemma 3
        # is keyed by layer type and never holds it: HF always truncates, and so does archlab
        if "truncate" in p and not p.pop("truncate"):
            warnings.warn(
                f"gemma3: rope_parameters[{kind!r}].truncate=false is ignored, as HF transformers ignores it "
                "(it reads truncate from the top level of rope_parameters, which Gemma 3 keys by layer type): "
                "YaRN's correction range is truncated",
                stacklevel=3,
            )
    return {"full_attention": full, "sliding_attention": sliding}


def _text_config(hf: dict) -> ModelConfig:
    hf = with_defaults(hf, _TEXT_DEFAULTS)
    if hf.get("use_bidirectional_attention"):
        raise CheckpointError("config.json: use_bidirectional_attention=true (an encoder, EmbeddingGemma) is not a causal LM")
    n_layers = positive_int(hf, "num_hidden_layers")
    pattern = positive_int(hf, "sliding_window_pattern")
    types = layer_types(
        hf, n_layers, ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n_layers)]
    )
    # Gemma3Attention rotates the whole head (Llama's apply_rotary_pos_emb): read_rope
    ropes = {t: read_rope({"rope_parameters": p, "max_position_embeddings": hf["max_position_embeddings"],
                           "model_type": hf.get("model_type")}, honours_partial=False)
             for t, p in _ropes(hf).items()}
    if hf.get("attn_logit_softcapping") is not None:
        warnings.warn(
            f"gemma3: attn_logit_softcapping={hf['attn_logit_softcapping']} is ignored, as HF's Gemma3Attention ignores it",
            stacklevel=2,
        )
    norm = rms_norm(hf, unit_offset=True)
    scalar = get_field(hf, "query_pre_attn_scalar")
    if not isinstance(scalar, (int, float)) or isinstance(scalar, bool) or scalar <= 0:
        raise CheckpointError(f"config.json: query_pre_attn_scalar must be a positive number, got {scalar!r}")
    return llama_like_config(
        hf, family="gemma3", name="gemma3", act="hidden_activation", n_layers=n_layers, norm=norm,
        block="sandwich", layer_types=types,
        position=ropes["full_attention"], rope_local=ropes["sliding_attention"] if "sliding" in types else None,
        attention={"scale": scalar**-0.5, "window": sliding_window(hf, types), "qk_norm": norm, "qk_norm_scope": "head"},
        embed_scale=SQRT_D_MODEL, logit_softcap=hf.get("final_logit_softcapping"),
    )


def _multimodal_config(hf: dict) -> ModelConfig:
    text = hf.get("text_config")
    if not isinstance(text, dict):
        raise CheckpointError("config.json: model_type 'gemma3' needs a text_config (the language model's config)")
    # Gemma3ForConditionalGeneration ties its lm_head by the outer tie_word_embeddings
    return _text_config({**text, "tie_word_embeddings": bool(hf.get("tie_word_embeddings", True))})


# Gemma3ForConditionalGeneration checkpoints nest the decoder as language_model.model.* beside
# vision_tower.* and multi_modal_projector.*, which the text decoder does not use.
_MULTIMODAL_IGNORE = IGNORE + (r"^vision_tower\.", r"^multi_modal_projector\.", r"^language_model\.lm_head\.weight$")


def _multimodal_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    return decoder_rules(SANDWICH_NORMS, model="language_model.model.", head="language_model.lm_head.weight")


register(HFFamily(("gemma3_text",), _text_config, lambda cfg, hf: decoder_rules(SANDWICH_NORMS), ignore=IGNORE))
register(HFFamily(("gemma3",), _multimodal_config, _multimodal_rules, ignore=_MULTIMODAL_IGNORE))
