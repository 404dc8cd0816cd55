"""GGUF `llama4` (Llama 4 Scout / Maverick, text model) read through archlab's HF llama4 family.

How llama.cpp's converter writes it (conversion/llama4.py, Llama4Model(LlamaModel) with
undo_permute = False): Q/K rows as the HF checkpoint holds them (Meta's complex-form RoPE pairs,
which llama.cpp's NORM RoPE rotates alike); feed_forward_length is intermediate_size_mlp (the
dense layers), expert_feed_forward_length the experts' intermediate_size; interleave_moe_layer_step;
Llama 3 RoPE scaling as a rope_freqs.weight tensor. The experts are llama.cpp's stacked
ffn_{gate,up}_exps (E, F, D) and ffn_down_exps (E, D, F) (the shapes llama-model.cpp creates for
LLM_ARCH_LLAMA4), router ffn_gate_inp, shared expert ffn_*_shexp.

What the metadata does not carry, llama.cpp fixes (src/llama-model.cpp, LLM_ARCH_LLAMA4): unless
attention.sliding_window is 0, RoPE layers attend in chunks of 8192 and every 4th layer is a
NoPE layer with attention temperature tuning (floor 8192, scale 0.1); with it 0 (MobileLLM),
every layer rotates and attends globally. The weightless QK norm is on unless the model has 128
experts (use_kq_norm = type != LLM_TYPE_17B_128E: Maverick has none, as its HF config says).
HF's GGUF loader does not read llama4.
"""

from __future__ import annotations

from typing import Any

import torch

from .families import llama_like_json
from .hf_backed import LAYER, HFBacked, Names, Tensors
from .metadata import int_value
from .reader import GGUFFile

__all__ = ["LLAMA4"]

_CHUNK = 8192  # llama.cpp: hparams.n_swa = 8192 (the chunk), n_attn_temp_floor_scale = 8192
_TEMPERATURE_SCALE = 0.1  # f_attn_temp_scale
_NO_ROPE_STEP = 4  # n_no_rope_layer_step (llama_hparams' default)
_MAVERICK_EXPERTS = 128


def _llama4_json(g: GGUFFile) -> dict[str, Any]:
    hf = llama_like_json(g, "llama4_text")
    n_layers, n_experts = hf["num_hidden_layers"], int_value(g, "expert_count")
    chunked = int_value(g, "attention.sliding_window", _CHUNK) != 0
    hf.update(
        intermediate_size=int_value(g, "expert_feed_forward_length"),
        intermediate_size_mlp=hf["intermediate_size"],
        num_local_experts=n_experts, num_experts_per_tok=int_value(g, "expert_used_count"),
        interleave_moe_layer_step=int_value(g, "interleave_moe_layer_step"), moe_layers=None,
        use_qk_norm=n_experts != _MAVERICK_EXPERTS,
        attention_chunk_size=_CHUNK, no_rope_layer_interval=_NO_ROPE_STEP,
        attn_temperature_tuning=chunked, floor_scale=_CHUNK, attn_scale=_TEMPERATURE_SCALE,
    )
    if not chunked:
        hf.update(no_rope_layers=[1] * n_layers, layer_types=["full_attention"] * n_layers)
    return hf


def _gate_up(ts: Tensors, hf: dict) -> torch.Tensor:
    # HF's gate_up_proj (E, D, 2F): [gate | up] halves along the last axis (Llama4TextExperts)
    gate, up = ts
    return torch.cat((gate.transpose(1, 2), up.transpose(1, 2)), dim=-1)


_FFN = {"feed_forward.gate_proj": "ffn_gate", "feed_forward.up_proj": "ffn_up", "feed_forward.down_proj": "ffn_down",
        "feed_forward.router": "ffn_gate_inp", "feed_forward.shared_expert.gate_proj": "ffn_gate_shexp",
        "feed_forward.shared_expert.up_proj": "ffn_up_shexp", "feed_forward.shared_expert.down_proj": "ffn_down_shexp"}
_NAMES = Names(
    layer={**LAYER, **_FFN},
    special={
        "feed_forward.experts.gate_up_proj": [(("ffn_gate_exps.weight", "ffn_up_exps.weight"), _gate_up)],
        "feed_forward.experts.down_proj": [(("ffn_down_exps.weight",), lambda ts, hf: ts[0].transpose(1, 2))],
    },
)

LLAMA4 = HFBacked(_llama4_json, _NAMES, ignore=lambda g: (r"^rope_freqs\.weight$",))
