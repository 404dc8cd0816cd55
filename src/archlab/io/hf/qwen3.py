"""HF `qwen3` and `qwen3_moe`: the Llama block with QK-norm (an RMSNorm of head_dim over each
head's query and key, before RoPE) and head_dim independent of hidden_size.

# diff with llama (modeling_qwen3.py, modeling_qwen3_moe.py)
- self_attn.q_norm / k_norm; `attention_bias` covers q, k, v and o; the MLP has no bias.
- qwen3: head_dim defaults to 128 (Qwen3Config), not hidden_size / heads; sliding layers
  only with use_sliding_window, from layer max_window_layers on (or as `layer_types` says).
- qwen3_moe: head_dim defaults to hidden_size / heads (Qwen3MoeConfig has no such field);
  layer i is MoE unless i is in mlp_only_layers or (i + 1) % decoder_sparse_step != 0, and
  the other layers are a dense GLU of intermediate_size. Softmax over all router logits, top
  k, renormalised only with norm_topk_prob (Qwen3MoeTopKRouter). With use_sliding_window,
  every layer slides (Qwen3MoeAttention reads config.sliding_window unconditionally).
  Experts are stored per expert (mlp.experts.{e}.gate_proj/up_proj/down_proj) or fused.
"""

from __future__ import annotations

from ...model_config import ConfigError, ModelConfig, MoEConfig, RouterConfig
from ..mapping import Rule
from .core import QWEN_MOE_NAMES, CheckpointError, HFFamily, activation, get_field, in_config_json_names, register
from .values import bool_field, int_field
from .llama_like import (
    head_dim, layer_types, llama_like_config, positive_int, rms_norm, sliding_window, sparse_ffn_types, with_defaults,
)
from .llama_rules import IGNORE, PRE_NORMS, decoder_rules, expert_rules

_DEFAULTS = {
    "qwen3": {"num_key_value_heads": 32, "head_dim": 128, "rms_norm_eps": 1e-6, "hidden_act": "silu",
              "tie_word_embeddings": False, "attention_bias": False, "use_sliding_window": False,
              "sliding_window": 4096, "max_window_layers": 28},
    "qwen3_moe": {"num_key_value_heads": 4, "rms_norm_eps": 1e-6, "hidden_act": "silu", "tie_word_embeddings": False,
                  "attention_bias": False, "use_sliding_window": False, "sliding_window": 4096,
                  "decoder_sparse_step": 1, "mlp_only_layers": None, "num_experts_per_tok": 8,
                  "moe_intermediate_size": 768, "norm_topk_prob": False},
}


def _qwen3_layer_types(hf: dict, n_layers: int) -> tuple[str, ...]:
    # Qwen3Config.__post_init__: the window exists only with use_sliding_window
    window = hf.get("sliding_window") if hf.get("use_sliding_window") else None
    if hf.get("model_type") == "qwen3_moe":
        # no layer_types: sliding_window alone decides, for every layer
        return ("sliding" if window is not None else "global",) * n_layers
    first = int_field(hf, "max_window_layers", lo=0) if window is not None else 0
    derived = [
        "sliding_attention" if window is not None and i >= first else "full_attention" for i in range(n_layers)
    ]
    types = layer_types(hf, n_layers, derived)
    if "sliding" in types and window is None:
        raise CheckpointError(
            "config.json: layer_types has sliding_attention layers, but use_sliding_window is false, so HF "
            "builds them without a window"
        )
    return types


def _qwen3_moe_plan(hf: dict, n_layers: int) -> tuple[MoEConfig | None, tuple[str, ...] | None]:
    # v5 maps num_experts onto num_local_experts (Qwen3MoeConfig.attribute_map)
    n_experts = hf.get("num_experts", hf.get("num_local_experts", 128))
    if not isinstance(n_experts, int) or isinstance(n_experts, bool) or n_experts < 0:
        raise CheckpointError(f"config.json: num_experts (or num_local_experts) must be a non-negative integer, got {n_experts!r}")
    ffn_types = sparse_ffn_types(hf, n_layers, n_experts)
    if "moe" not in ffn_types:
        return None, ffn_types
    try:
        moe = MoEConfig(
            n_experts=n_experts,
            top_k=get_field(hf, "num_experts_per_tok"),
            hidden=get_field(hf, "moe_intermediate_size"),
            activation=activation(hf, "hidden_act"),
            router=RouterConfig(score="softmax", norm_topk=bool_field(hf, "norm_topk_prob", False)),
        )
    except (ConfigError, TypeError) as e:
        raise in_config_json_names(e, QWEN_MOE_NAMES, "num_experts / num_experts_per_tok / moe_intermediate_size") from None
    return moe, ffn_types


def _qwen3_config(hf: dict) -> ModelConfig:
    model_type = hf.get("model_type")
    hf = with_defaults(hf, _DEFAULTS[model_type])
    n_layers = positive_int(hf, "num_hidden_layers")
    types = _qwen3_layer_types(hf, n_layers)
    moe, ffn_types = _qwen3_moe_plan(hf, n_layers) if model_type == "qwen3_moe" else (None, None)
    norm = rms_norm(hf)
    return llama_like_config(
        hf, family="qwen3", n_layers=n_layers, norm=norm, moe=moe, layer_types=types, ffn_types=ffn_types,
        attention={
            "head_dim": head_dim(hf, default=128 if model_type == "qwen3" else None),
            "window": sliding_window(hf, types),
            "qk_norm": norm,
            "qk_norm_scope": "head",
        },
    )


def _qwen3_moe_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    return decoder_rules(PRE_NORMS) + expert_rules()


register(HFFamily(("qwen3",), _qwen3_config, lambda cfg, hf: decoder_rules(PRE_NORMS), ignore=IGNORE))
register(HFFamily(("qwen3_moe",), _qwen3_config, _qwen3_moe_rules, ignore=IGNORE))
