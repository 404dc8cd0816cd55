"""GGUF `glm4moe` (GLM-4.5, GLM-4.5-Air) read through archlab's HF glm4_moe family.

How llama.cpp's converter writes it (conversion/glm.py, Glm4MoeModel): the Llama layout with
rotate-half (NeoX) RoPE rows, no permutation; rope.dimension_count = head_dim *
partial_rotary_factor; q/k/v biases and the optional q/k norms as tensors; DeepSeek-V3's MoE
(sigmoid gating, exp_probs_b, shared experts, leading dense layers); and block_count counting
the multi-token-prediction layers too (num_hidden_layers + nextn_predict_layers), which follow
the decoder layers as blk.{L}.* and which neither HF's model nor ours runs.
"""

from __future__ import annotations

from typing import Any

from ...errors import CheckpointError
from .deepseek2 import NAMES as DEEPSEEK_NAMES
from .families import llama_like_json
from .hf_backed import LAYER, HFBacked, Names
from ..index_range import index_range
from .metadata import float_value, int_value
from .reader import GGUFFile

__all__ = ["GLM4_MOE"]

_SIGMOID = 2  # gguf.ExpertGatingFuncType


def _mtp_layers(g: GGUFFile) -> int:
    return int_value(g, "nextn_predict_layers", 0)


def _glm4_moe_json(g: GGUFFile) -> dict[str, Any]:
    gating = int_value(g, "expert_gating_func", _SIGMOID)
    if gating != _SIGMOID:
        raise CheckpointError(f"{g.path}: glm4moe.expert_gating_func={gating} is not supported (GLM-4.5 routes by sigmoid, 2)")
    hf = llama_like_json(g, "glm4_moe")
    groups = int_value(g, "expert_group_count", 1)
    hf.update(
        num_hidden_layers=hf["num_hidden_layers"] - _mtp_layers(g),
        num_nextn_predict_layers=0,  # their tensors are ignored by GGUF name (GLM4_MOE.ignore)
        use_qk_norm="blk.0.attn_q_norm.weight" in g,
        n_routed_experts=int_value(g, "expert_count"), num_experts_per_tok=int_value(g, "expert_used_count"),
        moe_intermediate_size=int_value(g, "expert_feed_forward_length"),
        n_shared_experts=int_value(g, "expert_shared_count", 0),
        first_k_dense_replace=int_value(g, "leading_dense_block_count", 0),
        routed_scaling_factor=float_value(g, "expert_weights_scale", 1.0),
        # llama.cpp: expert_weights_norm defaults to false (src/llama-model.cpp, get_key(..., false))
        norm_topk_prob=bool(g.arch_value("expert_weights_norm", False)),
        n_group=groups, topk_group=int_value(g, "expert_group_used_count", 1),
    )
    return hf


def _mtp_ignore(g: GGUFFile) -> tuple[str, ...]:
    n = _mtp_layers(g)
    if not n:
        return ()
    first = int_value(g, "block_count") - n
    if first < 1:
        raise CheckpointError(f"{g.path}: glm4moe.nextn_predict_layers={n} leaves no model layer of block_count={first + n}")
    return (r"^blk\.%s\." % index_range(first, first + n),)


GLM4_MOE = HFBacked(
    _glm4_moe_json,
    # post_attention_layernorm (the norm before the MLP) is llama.cpp's post_attention_norm here
    # (gguf-py constants.py MODEL_TENSORS[GLM4_MOE] lists ATTN_POST_NORM, not FFN_NORM)
    Names(layer={**LAYER, **{k: v for k, v in DEEPSEEK_NAMES.layer.items() if k.startswith("mlp.")},
                 "post_attention_layernorm": "post_attention_norm"},
          special={k: v for k, v in DEEPSEEK_NAMES.special.items() if k.startswith("mlp.")}),
    ignore=_mtp_ignore,
)
