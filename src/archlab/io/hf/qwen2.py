"""HF `qwen2` (Qwen2, Qwen2.5, QwQ) and `qwen2_moe` (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B): the
Llama block with biases on the query, key and value projections, and in qwen2_moe routed
experts beside an always-on shared expert scaled by a sigmoid gate.

# diff with llama (modeling_qwen2.py, modeling_qwen2_moe.py)
- q_proj, k_proj and v_proj have biases, o_proj none: qwen2 always (whatever config.json
  says), qwen2_moe as its `qkv_bias` says (default true). The MLP has no bias.
- head_dim is hidden_size / heads unless config.json gives one (no such field in the classes).
- sliding layers exist only with use_sliding_window. qwen2: from layer max_window_layers on
  (Qwen2Config.__post_init__). qwen2_moe: every even-indexed layer below max_window_layers
  (Qwen2MoeConfig.__post_init__: `bool((i + 1) % 2) and i < max_window_layers`); without
  use_sliding_window its sliding_window becomes 0. An explicit `layer_types` wins in both.
- qwen2_moe: layer i is MoE when num_experts > 0, (i + 1) % decoder_sparse_step == 0 and i is
  not in mlp_only_layers, else a dense GLU of intermediate_size (Qwen2MoeDecoderLayer). Softmax
  over all router logits, top k, renormalised only with norm_topk_prob (Qwen2MoeTopKRouter).
  Every MoE layer adds a shared GLU of shared_expert_intermediate_size times
  sigmoid(shared_expert_gate(x)) (Qwen2MoeSparseMoeBlock): MoEConfig.shared_gate.
"""

from __future__ import annotations

from typing import Any

from ...model_config import ModelConfig
from ..mapping import Rule, rename
from .core import CheckpointError, HFFamily, activation, register
from .llama_like import flag, gated_shared_moe, layer_types, llama_like_config, positive_int, sliding_window, sparse_ffn_types, with_defaults
from .llama_rules import (IGNORE, PRE_NORMS, decoder_rules, expert_rules, no_gated_shared_expert, shared_expert_rules,
                          unused_shared_gate)

# The class defaults (configuration_qwen2.py, configuration_qwen2_moe.py) for what config.json
# may leave out. rope_theta 10000 is theirs too (rope_parameters None -> the default theta).
_DEFAULTS: dict[str, dict[str, Any]] = {
    "qwen2": {"num_key_value_heads": 32, "rms_norm_eps": 1e-6, "hidden_act": "silu", "tie_word_embeddings": False,
              "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 28},
    "qwen2_moe": {"num_key_value_heads": 16, "rms_norm_eps": 1e-6, "hidden_act": "silu", "tie_word_embeddings": False,
                  "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 28,
                  "decoder_sparse_step": 1, "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
                  "num_experts_per_tok": 4, "num_experts": 60, "norm_topk_prob": False, "mlp_only_layers": None,
                  "qkv_bias": True},
}


def _derived_layer_types(hf: dict, n_layers: int) -> list[str]:
    """The layer_types HF's config class builds when config.json has none."""
    on = hf.get("use_sliding_window") is True
    first = hf.get("max_window_layers")
    if not isinstance(first, int) or isinstance(first, bool):
        raise CheckpointError(f"config.json: max_window_layers must be an integer, got {first!r}")
    if hf.get("model_type") == "qwen2_moe":
        # Qwen2MoeConfig: "sliding_attention" if bool((i + 1) % 2) and i < max_window_layers and use_sliding_window
        slides = [on and (i + 1) % 2 == 1 and i < first for i in range(n_layers)]
    else:
        # Qwen2Config: sliding_window is None without use_sliding_window; then no layer slides
        slides = [on and hf.get("sliding_window") is not None and i >= first for i in range(n_layers)]
    return ["sliding_attention" if s else "full_attention" for s in slides]


def _layer_types(hf: dict, n_layers: int) -> tuple[str, ...]:
    types = layer_types(hf, n_layers, _derived_layer_types(hf, n_layers))
    if "sliding" in types and hf.get("use_sliding_window") is not True:
        # HF then builds the sliding layers' mask with sliding_window None (qwen2) or 0 (qwen2_moe)
        raise CheckpointError(
            "config.json: layer_types has sliding_attention layers, but use_sliding_window is not true, so HF "
            "builds them without a window"
        )
    return types


def _qwen2_config(hf: dict) -> ModelConfig:
    model_type = hf.get("model_type")
    hf = with_defaults(hf, _DEFAULTS[model_type])
    n_layers = positive_int(hf, "num_hidden_layers")
    types = _layer_types(hf, n_layers)
    fields: dict[str, Any] = {}
    if model_type == "qwen2_moe":
        n_experts = hf["num_experts"]
        if not isinstance(n_experts, int) or isinstance(n_experts, bool) or n_experts < 0:
            raise CheckpointError(f"config.json: num_experts must be a non-negative integer, got {n_experts!r}")
        ffn_types = sparse_ffn_types(hf, n_layers, n_experts)
        fields = {"ffn_types": ffn_types,
                  "moe": gated_shared_moe(hf, activation(hf, "hidden_act"), flag(hf, "norm_topk_prob")) if "moe" in ffn_types else None}
        qkv_bias = flag(hf, "qkv_bias")
    else:
        qkv_bias = True  # Qwen2Attention: bias=True on q, k, v, hard-coded
    return llama_like_config(
        hf, family="qwen2", n_layers=n_layers, layer_types=types,
        attention={"qkv_bias": qkv_bias, "out_bias": False, "window": sliding_window(hf, types)},
        **fields,
    )


def _qwen2_moe_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    p = "model.layers.{i}.mlp."
    return [
        *decoder_rules(PRE_NORMS),
        *expert_rules(),
        *shared_expert_rules(p + "shared_expert."),
        rename("layers.{i}.ffn.shared_gate.weight", p + "shared_expert_gate.weight"),
    ]


register(HFFamily(("qwen2",), _qwen2_config, lambda cfg, hf: decoder_rules(PRE_NORMS), ignore=IGNORE))
register(HFFamily(("qwen2_moe",), _qwen2_config, _qwen2_moe_rules, ignore=IGNORE, extra_ignore=unused_shared_gate,
                  empty_tensors=no_gated_shared_expert))
