"""GGUF `qwen2` (Qwen2, Qwen2.5, QwQ) and `qwen2moe` (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B) read
through archlab's HF qwen2 / qwen2_moe families (io/hf/qwen2.py).

How llama.cpp's converter writes them (conversion/qwen.py, Qwen2Model and Qwen2MoeModel, both
over TextModel.set_gguf_parameters):
- HF's Q/K rows as they are (no LlamaModel.permute), q/k/v biases as attn_{q,k,v}.bias.
- No sliding-window key: TextModel writes none, and llama.cpp's qwen2 / qwen2moe graphs
  (src/models/qwen2.cpp, qwen2moe.cpp) attend to the whole context. The Qwen2 configs set
  use_sliding_window false anyway.
- qwen2moe: the experts stacked as ffn_{gate,up,down}_exps, the router as ffn_gate_inp, the
  shared expert as ffn_{gate,up,down}_shexp and its sigmoid gate as ffn_gate_inp_shexp;
  expert_count / expert_used_count (TextModel), expert_feed_forward_length and
  expert_shared_feed_forward_length (Qwen2MoeModel). Nothing says norm_topk_prob,
  decoder_sparse_step or mlp_only_layers: llama.cpp's qwen2moe graph softmaxes the router and
  never renormalises the top k (build_moe_ffn(..., LLM_FFN_SILU, false, ...)), and builds an MoE
  block in every layer; gguf-py has no dense FFN tensor for QWEN2MOE (constants.py
  MODEL_TENSORS), so the converter cannot write a dense layer. Those are what the files mean.
"""

from __future__ import annotations

from typing import Any

from ...errors import CheckpointError
from .families import llama_like_json
from .hf_backed import LAYER, HFBacked, Names
from .metadata import int_value
from .reader import GGUFFile

__all__ = ["QWEN2", "QWEN2_MOE"]

_SOFTMAX = 1  # gguf.ExpertGatingFuncType


def _whole_head_rope(g: GGUFFile, hf: dict[str, Any]) -> None:
    # llama.cpp's qwen2 / qwen2moe graphs: GGML_ASSERT(n_embd_head == n_rot); HF's GGUF loader
    # ignores rope.dimension_count and rotates whole heads: a file saying otherwise is refused.
    rot = int_value(g, "rope.dimension_count", hf["head_dim"])
    if rot != hf["head_dim"]:
        raise CheckpointError(
            f"{g.path}: {g.architecture}.rope.dimension_count={rot} differs from the head dimension {hf['head_dim']}; "
            f"llama.cpp's {g.architecture} rotates whole heads (it asserts n_rot == head_dim)"
        )


def _qwen2_json(g: GGUFFile) -> dict[str, Any]:
    hf = llama_like_json(g, "qwen2")
    _whole_head_rope(g, hf)
    # Qwen2Attention's q/k/v biases are not optional (nor in llama.cpp's qwen2): the tensors
    # must be there, and a file without them is refused naming the missing tensor
    hf.pop("attention_bias")
    hf.update(use_sliding_window=False, layer_types=None)
    return hf


def _refuse_unless(g: GGUFFile, key: str, value: Any, expected: Any, why: str) -> None:
    if value is not None and value != expected:
        raise CheckpointError(f"{g.path}: {g.architecture}.{key}={value!r} is not supported ({expected!r}: {why})")


def _qwen2_moe_json(g: GGUFFile) -> dict[str, Any]:
    # keys the converter never writes for qwen2moe and llama.cpp's qwen2moe graph does not read:
    # a file that sets them otherwise asks for a model neither llama.cpp nor HF computes
    _refuse_unless(g, "expert_gating_func", int_value(g, "expert_gating_func", None), _SOFTMAX,
                   "llama.cpp's qwen2moe routes by softmax whatever the file says")
    _refuse_unless(g, "expert_weights_norm", g.arch_value("expert_weights_norm", None), False,
                   "llama.cpp's qwen2moe never renormalises the top-k weights")
    _refuse_unless(g, "leading_dense_block_count", int_value(g, "leading_dense_block_count", None), 0,
                   "llama.cpp's qwen2moe has an MoE block in every layer")
    for key in ("expert_count", "expert_used_count"):
        if int_value(g, key) <= 0:  # llama.cpp: "n_expert(_used) must be > 0 for QWEN2MOE"
            raise CheckpointError(f"{g.path}: {g.architecture}.{key}={int_value(g, key)}; qwen2moe needs experts (> 0)")
    hf = llama_like_json(g, "qwen2_moe")
    _whole_head_rope(g, hf)
    n_ff, top_k = hf["intermediate_size"], int_value(g, "expert_used_count")
    hf.update(
        # llama.cpp's create_tensor_qkv takes the biases when present; Qwen2MoeConfig's qkv_bias
        qkv_bias=hf.pop("attention_bias"),
        num_experts=int_value(g, "expert_count"), num_experts_per_tok=top_k,
        # where the keys are absent, the widths llama.cpp assumes (src/models/qwen2moe.cpp,
        # load_arch_tensors: n_ff / n_expert_used, and n_ff); the tensor shapes are checked on load
        moe_intermediate_size=int_value(g, "expert_feed_forward_length", None) or n_ff // top_k,
        shared_expert_intermediate_size=int_value(g, "expert_shared_feed_forward_length", None) or n_ff,
        norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[],
        use_sliding_window=False, layer_types=None,
    )
    return hf


# Without output.weight both are read tied, as the converter's source model was (HF's GGUF
# loader does the same); llama.cpp's qwen2moe itself requires output.weight.
QWEN2 = HFBacked(_qwen2_json)
QWEN2_MOE = HFBacked(
    _qwen2_moe_json,
    Names(
        layer={**LAYER, "mlp.shared_expert_gate": "ffn_gate_inp_shexp"},
        # the shared expert's gate: HF (1, D); files hold (D,) or (1, D) (HF's Qwen2MoeTensorProcessor)
        transforms={"mlp.shared_expert_gate": lambda t, hf: t.reshape(1, -1)},
    ),
)
