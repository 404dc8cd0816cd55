"""GGUF `gpt-oss` (OpenAI GPT-OSS 20B / 120B) read through archlab's HF gpt_oss family.

How llama.cpp's converter writes it (conversion/gpt_oss.py, GptOssModel): HF's fused experts
split back apart, gate_up_proj (E, D, 2F) with gate and up interleaved along its last axis
becoming ffn_gate_exps / ffn_up_exps (E, F, D) (and their biases (E, F)), down_proj (E, F, D)
becoming ffn_down_exps (E, D, F); the hub's MXFP4 experts repacked as ggml MXFP4 blocks; the
router as ffn_gate_inp (with a bias), the sinks as attn_sinks.weight, post_attention_layernorm
(the norm before the MLP) as post_attention_norm. Every other layer slides (llama.cpp:
set_swa_pattern(2), layer 0 sliding, as GptOssConfig's layer_types).

llama.cpp's clamped SwiGLU is swiglu_oai(alpha 1.702, limit 7.0), the constants of GptOssConfig
and of OpenAI's reference, which the metadata does not carry.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from .families import llama_like_json
from .hf_backed import LAYER, HFBacked, Names, Tensors
from .metadata import int_value
from .reader import GGUFFile

__all__ = ["GPT_OSS"]


def _gpt_oss_json(g: GGUFFile) -> dict[str, Any]:
    hf = llama_like_json(g, "gpt_oss")
    hf.update(
        num_local_experts=int_value(g, "expert_count"),
        num_experts_per_tok=int_value(g, "expert_used_count"),
        intermediate_size=int_value(g, "expert_feed_forward_length"),
        sliding_window=int_value(g, "attention.sliding_window"),
        swiglu_alpha=1.702, swiglu_limit=7.0,
    )
    rope = hf["rope_parameters"]
    if rope["rope_type"] == "yarn":
        # OpenAI's reference (gpt_oss/torch/model.py, RotaryEmbedding) and HF (GptOssConfig:
        # truncate=False) take YaRN's correction range unrounded; llama.cpp rounds it outward
        # (ggml_rope_yarn_corr_dims: floor / ceil). We follow the authors.
        rope["truncate"] = False
        warnings.warn(
            f"{g.path}: gpt-oss YaRN uses the unrounded correction range of OpenAI's reference and HF "
            "(truncate=False); archlab follows them. llama.cpp rounds it to whole dimensions, so its logits differ slightly",
            stacklevel=3,
        )
    return hf


def _interleave(ts: Tensors, hf: dict) -> torch.Tensor:
    """(E, F, D) gate and up -> HF's gate_up_proj (E, D, 2F), gate at even columns, up at odd;
    (E, F) biases -> gate_up_proj_bias (E, 2F) alike."""
    gate, up = ts
    if gate.dim() == 3:
        gate, up = gate.transpose(1, 2), up.transpose(1, 2)
    return torch.stack((gate, up), dim=-1).flatten(-2)


_NAMES = Names(
    layer={**LAYER, "post_attention_layernorm": "post_attention_norm", "mlp.router": "ffn_gate_inp"},
    special={
        "self_attn.sinks": [(("attn_sinks.weight",), lambda ts, hf: ts[0])],
        "mlp.experts.gate_up_proj": [(("ffn_gate_exps.weight", "ffn_up_exps.weight"), _interleave)],
        "mlp.experts.gate_up_proj_bias": [(("ffn_gate_exps.bias", "ffn_up_exps.bias"), _interleave)],
        "mlp.experts.down_proj": [(("ffn_down_exps.weight",), lambda ts, hf: ts[0].transpose(1, 2))],
        "mlp.experts.down_proj_bias": [(("ffn_down_exps.bias",), lambda ts, hf: ts[0])],
    },
)

GPT_OSS = HFBacked(_gpt_oss_json, _NAMES)
