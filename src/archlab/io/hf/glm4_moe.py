"""HF `glm4_moe` (GLM-4.5, GLM-4.5-Air): grouped-query attention with DeepSeek-V3's MoE.

# diff with llama (modeling_glm4_moe.py)
- q/k/v biases (`attention_bias`) but never one on o_proj (Glm4MoeAttention: bias=False).
- optional per-head RMSNorm on queries and keys before RoPE (`use_qk_norm`).
- partial RoPE: the first partial_rotary_factor of each head (0.5 when config.json says
  nothing: Glm4MoeConfig.__post_init__), rotated rotate-half within that part
  (apply_rotary_pos_emb's `rotate_half(q_rot)`), the rest passed through. (Dense GLM-4's
  `glm4` pairs adjacent dimensions instead; this family does not.)
- Glm4MoeTopkRouter: sigmoid scores, a selection-only e_score_correction_bias, groups
  ranked by their two best experts (n_group / topk_group), renormalised (norm_topk_prob)
  and scaled (routed_scaling_factor): DeepSeek-V3's router.
- the first first_k_dense_replace layers are dense (intermediate_size); the others MoE of
  moe_intermediate_size experts plus n_shared_experts shared ones.
- the multi-token-prediction layers (num_nextn_predict_layers; GLM-4.5 stores its one as
  model.layers.92) are not part of HF's model and are ignored here too.
"""

from __future__ import annotations

from ...model_config import ConfigError, ModelConfig, MoEConfig, RouterConfig
from .core import DEEPSEEK_MOE_NAMES, CheckpointError, HFFamily, activation, get_field, in_config_json_names, register
from .llama_like import flag, llama_like_config, positive_int, rms_norm, rope, with_defaults
from .llama_rules import IGNORE, PRE_NORMS, decoder_rules, deepseek_moe_rules, no_shared_expert

# Glm4MoeConfig's defaults (configuration_glm4_moe.py) for what config.json may leave out
_DEFAULTS = {
    "num_key_value_heads": 8, "hidden_act": "silu", "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False, "attention_bias": False, "moe_intermediate_size": 1408, "num_experts_per_tok": 8,
    "n_shared_experts": 1, "n_routed_experts": 128, "routed_scaling_factor": 1.0, "n_group": 1, "topk_group": 1,
    "first_k_dense_replace": 1, "norm_topk_prob": True, "use_qk_norm": False, "num_nextn_predict_layers": 1,
}


def _count(hf: dict, key: str) -> int:
    v = hf[key]
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise CheckpointError(f"config.json: {key} must be a non-negative integer, got {v!r}")
    return v


def _glm4_moe_config(hf: dict) -> ModelConfig:
    if "num_mtp_layers" in hf and "num_nextn_predict_layers" not in hf:  # v5's alias (attribute_map)
        hf = {**hf, "num_nextn_predict_layers": hf["num_mtp_layers"]}
    hf = with_defaults(hf, _DEFAULTS)
    # Glm4MoeConfig.__post_init__: kwargs.setdefault("partial_rotary_factor", 0.5), which fills
    # the RoPE dict where it has none (rope.py rope_dict)
    if "partial_rotary_factor" not in hf:
        hf["partial_rotary_factor"] = 0.5
    n_layers = positive_int(hf, "num_hidden_layers")
    first_dense = _count(hf, "first_k_dense_replace")
    act = activation(hf, "hidden_act")
    moe = None
    if first_dense < n_layers:
        try:
            moe = MoEConfig(
                n_experts=positive_int(hf, "n_routed_experts"),
                top_k=positive_int(hf, "num_experts_per_tok"),
                hidden=positive_int(hf, "moe_intermediate_size"),
                n_shared=_count(hf, "n_shared_experts"),
                activation=act,
                router=RouterConfig(
                    score="sigmoid",
                    norm_topk=flag(hf, "norm_topk_prob"),
                    scale=float(get_field(hf, "routed_scaling_factor")),
                    n_groups=positive_int(hf, "n_group"),
                    topk_groups=positive_int(hf, "topk_group"),
                    # groups ranked by their two best experts; with one group there is nothing to rank
                    group_score="top2_sum" if positive_int(hf, "n_group") > 1 else "max",
                    score_bias=True,
                ),
            )
        except ConfigError as e:
            raise in_config_json_names(e, DEEPSEEK_MOE_NAMES) from None
    return llama_like_config(
        hf, family="glm4_moe", n_layers=n_layers, ffn={"activation": act}, moe=moe,
        position=rope(hf, 10000.0, honours_partial=True),  # Glm4MoeAttention rotates the first cos.shape[-1] dims
        attention={
            "out_bias": False,  # Glm4MoeAttention: o_proj never has a bias
            "qk_norm": rms_norm(hf) if flag(hf, "use_qk_norm") else None,
        },
        # Glm4MoeDecoderLayer: MoE where layer_idx >= first_k_dense_replace
        ffn_types=tuple("dense" if i < first_dense else "moe" for i in range(n_layers)),
    )


def _glm4_moe_rules(cfg: ModelConfig, hf: dict):
    return decoder_rules(PRE_NORMS) + deepseek_moe_rules()


def _mtp_ignore(hf: dict, cfg: ModelConfig) -> list[str]:
    """The multi-token-prediction layers follow the last decoder layer (GLM-4.5: layer 92)."""
    n = hf.get("num_nextn_predict_layers", hf.get("num_mtp_layers", _DEFAULTS["num_nextn_predict_layers"])) or 0
    layers = "|".join(str(cfg.n_layers + j) for j in range(int(n)))
    return [rf"^model\.layers\.({layers})\."] if n else []


register(HFFamily(("glm4_moe",), _glm4_moe_config, _glm4_moe_rules, ignore=IGNORE, extra_ignore=_mtp_ignore,
                   empty_tensors=no_shared_expert))
