"""config.json's sizes, bounded before any family reads them: the families loop over
num_hidden_layers (per-layer kinds) before a ModelConfig exists to refuse it, so a hostile
10**9 would hang there. The bounds are ModelConfig's own (model_config.BOUNDS), which every
other source meets too; here only the upper bound (and finiteness) is checked, each family
keeps its own checks of type and sign."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ...model_config import BOUNDS, shown
from ..safetensors_dir import CheckpointError

# config.json keys of the families archlab reads (text_config's and rope_scaling's included)
KINDS = {
    "layers": ("num_hidden_layers", "n_layer", "num_layers", "num_nextn_predict_layers", "first_k_dense_replace"),
    "widths": ("hidden_size", "n_embd", "intermediate_size", "intermediate_size_mlp", "moe_intermediate_size",
               "shared_expert_intermediate_size", "n_inner", "head_dim", "kv_lora_rank", "q_lora_rank",
               "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "linear_key_head_dim", "linear_value_head_dim",
               "linear_conv_kernel_dim"),
    "vocabulary": ("vocab_size",),
    "counts": ("num_attention_heads", "n_head", "num_key_value_heads", "n_routed_experts", "num_experts",
               "num_local_experts", "n_shared_experts", "num_experts_per_tok", "n_group", "topk_group",
               "linear_num_key_heads", "linear_num_value_heads"),
    "positions": ("max_position_embeddings", "n_positions", "n_ctx", "sliding_window", "attention_chunk_size",
                  "original_max_position_embeddings"),
}
KIND_OF = {key: kind for kind, keys in KINDS.items() for key in keys}


def check_bounds(hf: Any, path: str | Path, where: str = "") -> None:
    """Refuse (CheckpointError naming the file, the key and the value) a size beyond its bound."""
    if not isinstance(hf, dict):
        return
    for key, v in hf.items():
        if isinstance(v, dict):
            check_bounds(v, path, f"{where}{key}.")
            continue
        kind = KIND_OF.get(key)
        if kind is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        limit = BOUNDS[kind]
        if (isinstance(v, float) and not math.isfinite(v)) or v > limit:
            raise CheckpointError(
                f"{path}: {where}{key} is {shown(v)}; expected at most {limit:,}, archlab's bound on {kind}, far "
                "above any published model (archlab.model_config.BOUNDS): the file is corrupt or not a real model"
            )
