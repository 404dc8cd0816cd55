"""Refusals of a config.json name its fields, not archlab's: a model-config error raised while
reading (MoEConfig's `moe.top_k`, DeltaNetConfig's `n_v_heads`) is said in the config.json
names that feed it (io/hf/core.py in_config_json_names)."""

from __future__ import annotations

import re

import pytest

import archlab
from archlab.io.hf import FAMILIES

transformers = pytest.importorskip("transformers")

_SMALL = dict(vocab_size=101, hidden_size=32, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
              num_key_value_heads=2, max_position_embeddings=128)
_DS = dict(_SMALL, q_lora_rank=None, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
           moe_intermediate_size=16, first_k_dense_replace=0, n_shared_experts=1)

# model type -> (HF config class, its kwargs, the experts field); top-k is set above the experts
CASES = {
    "deepseek_v3": ("DeepseekV3Config", dict(_DS, n_routed_experts=4, n_group=1, topk_group=1), "n_routed_experts"),
    "deepseek_v2": ("DeepseekV2Config", dict(_DS, n_routed_experts=4), "n_routed_experts"),
    "glm4_moe": ("Glm4MoeConfig", dict(_SMALL, n_routed_experts=4, moe_intermediate_size=16, first_k_dense_replace=0,
                                       n_group=1, topk_group=1), "n_routed_experts"),
    "qwen2_moe": ("Qwen2MoeConfig", dict(_SMALL, num_experts=4, moe_intermediate_size=16,
                                         shared_expert_intermediate_size=16), "num_experts"),
    "qwen3_moe": ("Qwen3MoeConfig", dict(_SMALL, num_experts=4, moe_intermediate_size=16), "num_experts"),
    "qwen3_next": ("Qwen3NextConfig", dict(_SMALL, head_dim=16, num_experts=4, moe_intermediate_size=16,
                                           shared_expert_intermediate_size=16, layer_types=["full_attention"]),
                   "num_experts"),
    "mixtral": ("MixtralConfig", dict(_SMALL, num_local_experts=4), "num_local_experts"),
    "gpt_oss": ("GptOssConfig", dict(_SMALL, head_dim=16, num_local_experts=4), "num_local_experts"),
    "llama4_text": ("Llama4TextConfig", dict(_SMALL, head_dim=16, num_local_experts=4, intermediate_size_mlp=64),
                    "num_local_experts"),
}


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_too_many_experts_per_token_is_refused_by_config_json_names(model_type):
    cls, kw, experts = CASES[model_type]
    hf = getattr(transformers, cls)(**kw).to_dict()
    hf["num_experts_per_tok"] = 5  # of 4 experts
    with pytest.raises(archlab.CheckpointError) as e:
        FAMILIES[model_type].read_config(hf)
    msg = str(e.value)
    assert re.search(rf"num_experts_per_tok: must be between 1 and {experts} \(4\), got 5", msg), msg
    assert "moe." not in msg and "top_k" not in msg, msg


def test_group_routing_refusal_names_n_group():
    """n_group=4 of 4 experts leaves one expert per group, which DeepSeek-V3's group score (the
    sum of each group's two best) cannot rank; with MoE layers it is refused by n_group."""
    cls, kw, _ = CASES["deepseek_v3"]
    hf = getattr(transformers, cls)(**kw).to_dict()
    hf.update(n_group=4, topk_group=2, num_experts_per_tok=2)
    with pytest.raises(archlab.CheckpointError, match=r"^config.json: n_group \(groups ranked by their two best experts\): "
                                                      r"top2_sum needs at least 2 experts per group") as e:
        FAMILIES["deepseek_v3"].read_config(hf)
    assert "moe." not in str(e.value)
