"""HF `smollm3`: the Llama block with NoPE layers, which rotate neither queries nor keys.

# diff with llama (modeling_smollm3.py, configuration_smollm3.py)
- `no_rope_layers[i]` is 1 where layer i uses RoPE and 0 where it is NoPE; when config.json
  has no list, SmolLM3Config builds it as int((i + 1) % no_rope_layer_interval != 0), so
  every 4th layer is NoPE by default (SmolLM3-3B: layers 3, 7, ..., 35).
- With use_sliding_window and a sliding_window, the NoPE layers (and only they) slide, unless
  config.json gives `layer_types` itself.
- The head is tied to the embedding unless config.json says otherwise (SmolLM3Config's
  default is true), and RoPE theta defaults to 2e6.
"""

from __future__ import annotations

from ...config import AttentionConfig, FFNConfig, ModelConfig, NormConfig
from .core import CheckpointError, HFFamily, activation, get_field, register
from .llama_like import (
    IGNORE,
    PRE_NORMS,
    decoder_rules,
    head_dim,
    layer_types,
    positive_int,
    rope,
    sliding_window,
    with_defaults,
)

# SmolLM3Config defaults (configuration_smollm3.py)
_DEFAULTS = {"num_key_value_heads": 4, "rms_norm_eps": 1e-6, "hidden_act": "silu", "tie_word_embeddings": True,
             "attention_bias": False, "mlp_bias": False, "use_sliding_window": False, "sliding_window": None,
             "no_rope_layer_interval": 4}


def _rope_layers(hf: dict, n_layers: int) -> tuple[bool, ...]:
    given = hf.get("no_rope_layers")
    if given is None:
        interval = positive_int(hf, "no_rope_layer_interval")
        return tuple((i + 1) % interval != 0 for i in range(n_layers))
    if not isinstance(given, list) or len(given) != n_layers or any(v not in (0, 1) for v in given):
        raise CheckpointError(
            f"config.json: no_rope_layers needs one 0 (NoPE) or 1 (RoPE) per layer (num_hidden_layers={n_layers}), got {given!r}"
        )
    return tuple(bool(v) for v in given)


def _smollm3_config(hf: dict) -> ModelConfig:
    hf = with_defaults(hf, _DEFAULTS)
    n_layers = positive_int(hf, "num_hidden_layers")
    rope_layers = _rope_layers(hf, n_layers)
    slides = bool(hf.get("use_sliding_window")) and hf.get("sliding_window") is not None
    types = layer_types(hf, n_layers, ["sliding_attention" if slides and not r else "full_attention" for r in rope_layers])
    if "sliding" in types and not slides:
        # SmolLM3Attention keeps its window only with use_sliding_window; eager and flash would disagree
        raise CheckpointError(
            "config.json: layer_types has sliding_attention layers, but use_sliding_window is false or sliding_window null"
        )
    bias = bool(hf.get("attention_bias"))
    n_heads = positive_int(hf, "num_attention_heads")
    return ModelConfig(
        name="smollm3",
        family="smollm",
        vocab_size=positive_int(hf, "vocab_size"),
        d_model=positive_int(hf, "hidden_size"),
        n_layers=n_layers,
        max_seq_len=positive_int(hf, "max_position_embeddings"),
        norm=NormConfig("rmsnorm", eps=get_field(hf, "rms_norm_eps")),
        position=rope(hf, 2e6),
        attention=AttentionConfig(
            n_heads=n_heads,
            n_kv_heads=hf.get("num_key_value_heads") or n_heads,  # null: MHA (SmolLM3Config.__post_init__)
            head_dim=head_dim(hf),
            qkv_bias=bias,
            out_bias=bias,
            window=sliding_window(hf, types),
        ),
        ffn=FFNConfig(
            hidden=positive_int(hf, "intermediate_size"), kind="glu", activation=activation(hf, "hidden_act"),
            bias=bool(hf.get("mlp_bias")),
        ),
        layer_types=types,
        rope_layers=rope_layers,
        tie_embeddings=bool(hf.get("tie_word_embeddings")),
    )


register(HFFamily(("smollm3",), _smollm3_config, lambda cfg, hf: decoder_rules(PRE_NORMS), ignore=IGNORE))
