"""The GGUF metadata of the architectures read through an HF family (hf_backed.py), written back
as the config.json fields llama.cpp's converter read (convert_hf_to_gguf.py,
set_gguf_parameters of each model class), with what llama.cpp's runtime assumes where the file
is silent (src/llama-model.cpp, load_hparams) made explicit. HF's own GGUF loader
(transformers/integrations/ggml.py GGUF_CONFIG_MAPPING) reads the same keys."""

from __future__ import annotations

import warnings
from typing import Any

from ...errors import CheckpointError
from .hf_backed import LAYER, SANDWICH, HFBacked, Names, unpermute_qk
from .metadata import float_value, int_value, rope, vocab_size
from .reader import GGUFFile

__all__ = ["HF_BACKED", "MIXTRAL", "llama_like_json"]


def _rope_json(g: GGUFFile, head_dim: int, ctx: int) -> dict[str, Any]:
    r = rope(g, head_dim, ctx)
    params: dict[str, Any] = {"rope_type": "default", "rope_theta": r.theta, "partial_rotary_factor": r.partial}
    s = r.scaling
    if s is not None:
        params.update(rope_type=s.kind, factor=s.factor, original_max_position_embeddings=s.original_max_seq_len)
        if s.kind == "llama3":  # recovered from rope_freqs.weight (metadata.py)
            params.update(low_freq_factor=s.low_freq_factor, high_freq_factor=s.high_freq_factor)
        if s.kind == "yarn":
            params.update(beta_fast=s.beta_fast, beta_slow=s.beta_slow)
            if s.attention_factor is not None:
                params["attention_factor"] = float(s.attention_factor)
    return params


def llama_like_json(g: GGUFFile, model_type: str) -> dict[str, Any]:
    """The fields every llama-shaped architecture writes (TextModel.set_gguf_parameters)."""
    d = int_value(g, "embedding_length")
    n_heads = int_value(g, "attention.head_count")
    # llama.cpp: n_embd_head_k = key_length, else n_embd / n_head (HF's per-family head_dim
    # defaults, e.g. Qwen3Config's 128, do not apply to a GGUF file)
    head_dim = int_value(g, "attention.key_length", None) or d // n_heads
    value_dim = int_value(g, "attention.value_length", head_dim)
    if value_dim != head_dim:
        raise CheckpointError(f"{g.path}: {g.architecture}.attention.value_length={value_dim} differs from key_length={head_dim}; not supported")
    ctx = int_value(g, "context_length")
    return {
        "model_type": model_type,
        "vocab_size": vocab_size(g),
        "hidden_size": d,
        "num_hidden_layers": int_value(g, "block_count"),
        "intermediate_size": int_value(g, "feed_forward_length"),
        "num_attention_heads": n_heads,
        "num_key_value_heads": int_value(g, "attention.head_count_kv", n_heads),
        "head_dim": head_dim,
        "max_position_embeddings": ctx,
        "rms_norm_eps": float_value(g, "attention.layer_norm_rms_epsilon", 1e-5),
        # llama.cpp's graphs take the optional biases when the tensors are present
        "attention_bias": "blk.0.attn_q.bias" in g,
        "hidden_act": "silu",
        # llama.cpp reuses token_embd for the output when the file has no output.weight
        "tie_word_embeddings": "output.weight" not in g,
        "rope_parameters": _rope_json(g, head_dim, ctx),
    }


def _qwen3_json(g: GGUFFile) -> dict[str, Any]:
    return llama_like_json(g, "qwen3")


def _qwen3_moe_json(g: GGUFFile) -> dict[str, Any]:
    hf = llama_like_json(g, "qwen3_moe")
    hf.update(
        num_experts=int_value(g, "expert_count"),
        num_experts_per_tok=int_value(g, "expert_used_count"),
        moe_intermediate_size=int_value(g, "expert_feed_forward_length"),
        # llama.cpp's qwen3moe graph always renormalises the top-k weights (src/models/qwen3moe.cpp,
        # build_moe_ffn(..., norm_w=true)); HF's GGUF loader sets the same default
        # (integrations/ggml.py GGUF_CONFIG_DEFAULTS_MAPPING["qwen3_moe"])
        norm_topk_prob=True,
        # every layer is MoE in llama.cpp's qwen3moe (no dense layers are read)
        decoder_sparse_step=1, mlp_only_layers=[],
    )
    return hf


def _olmo2_json(g: GGUFFile) -> dict[str, Any]:
    return llama_like_json(g, "olmo2")


# llama.cpp's Gemma 3 (src/llama-model.cpp, LLM_ARCH_GEMMA3): every 6th layer global, the
# sliding layers rotating with base 10000 and no scaling, whatever the file says
_GEMMA3_PATTERN = 6
_GEMMA3_LOCAL_THETA = 10_000.0
# ... and the softmax scale 1/sqrt(head_dim), except for the 62-layer 27B model, which
# llama.cpp recognises by its layer count and gives 1/sqrt(n_embd / n_head) (gemma_pytorch
# config.py: query_pre_attn_scalar = hidden_size // num_heads for 27B)
_GEMMA3_27B_LAYERS = 62
# what HF's GGUF loader uses for every file (Gemma3TextConfig's default; GGUF_CONFIG_MAPPING
# maps no key to query_pre_attn_scalar)
_HF_GEMMA3_SCALAR = 256


def _gemma3_json(g: GGUFFile) -> dict[str, Any]:
    hf = llama_like_json(g, "gemma3_text")
    full = hf.pop("rope_parameters")
    # Gemma3Model.set_gguf_parameters: the linear scaling is for the global layers only
    sliding = {"rope_type": "default", "rope_theta": _GEMMA3_LOCAL_THETA, "partial_rotary_factor": full["partial_rotary_factor"]}
    scalar = hf["head_dim"]
    if hf["num_hidden_layers"] == _GEMMA3_27B_LAYERS:
        scalar = hf["hidden_size"] // hf["num_attention_heads"]
    if scalar != _HF_GEMMA3_SCALAR:
        warnings.warn(
            f"{g.path}: gemma3 attention scale 1/sqrt({scalar}), as llama.cpp computes it for this file "
            f"(1/sqrt(head_dim), or 1/sqrt(hidden_size / heads) for its 62-layer 27B); archlab follows llama.cpp. "
            f"HF's GGUF loader uses Gemma3TextConfig's default query_pre_attn_scalar={_HF_GEMMA3_SCALAR} instead, "
            "so its logits differ for this file",
            stacklevel=2,
        )
    window = int_value(g, "attention.sliding_window", 0)
    if not window:
        # newer llama.cpp: no window (or 0) means every layer global (llama_load_hparams_gemma3)
        hf["layer_types"] = ["full_attention"] * hf["num_hidden_layers"]
    hf.update(
        hidden_activation="gelu_pytorch_tanh",  # llama.cpp's ggml_gelu: the tanh approximation
        rms_norm_eps=float_value(g, "attention.layer_norm_rms_epsilon", 1e-6),
        sliding_window=window or None,
        sliding_window_pattern=_GEMMA3_PATTERN,
        query_pre_attn_scalar=scalar,
        final_logit_softcapping=float_value(g, "final_logit_softcapping", None),
        rope_parameters={"full_attention": full, "sliding_attention": sliding},
    )
    hf.pop("hidden_act")
    return hf


def _smollm3_json(g: GGUFFile) -> dict[str, Any]:
    hf = llama_like_json(g, "smollm3")
    # every 4th layer NoPE: a literal in llama.cpp (src/llama-model.cpp, LLM_ARCH_SMOLLM3:
    # n_no_rope_layer_step = 4), no metadata key; SmolLM3Config's no_rope_layer_interval says the same
    hf.update(no_rope_layer_interval=4, no_rope_layers=None, use_sliding_window=False)
    return hf


def _gpt2_json(g: GGUFFile) -> dict[str, Any]:
    # GPT2Model.set_gguf_parameters (conversion/gpt2.py)
    return {
        "model_type": "gpt2", "vocab_size": vocab_size(g), "n_embd": int_value(g, "embedding_length"),
        "n_layer": int_value(g, "block_count"), "n_head": int_value(g, "attention.head_count"),
        "n_positions": int_value(g, "context_length"), "n_inner": int_value(g, "feed_forward_length"),
        "layer_norm_epsilon": float_value(g, "attention.layer_norm_epsilon", 1e-5),
        "activation_function": "gelu_new",  # llama.cpp's LLM_FFN_GELU: ggml_gelu, the tanh approximation
        "tie_word_embeddings": "output.weight" not in g,
    }


def _one_kv_head(g: GGUFFile) -> None:
    heads = int_value(g, "attention.head_count")
    if int_value(g, "attention.head_count_kv", heads) != heads:
        raise CheckpointError(f"{g.path}: {g.architecture}.attention.head_count_kv differs from head_count={heads}; "
                              f"{g.architecture} is multi-head attention")


def _bloom_json(g: GGUFFile) -> dict[str, Any]:
    # BloomModel.set_gguf_parameters (conversion/bloom.py): context_length is seq_length
    _one_kv_head(g)
    d = int_value(g, "embedding_length")
    if int_value(g, "feed_forward_length", 4 * d) != 4 * d:
        raise CheckpointError(f"{g.path}: bloom.feed_forward_length must be 4 * embedding_length = {4 * d} (BLOOM's MLP)")
    return {
        "model_type": "bloom", "vocab_size": vocab_size(g), "hidden_size": d, "n_layer": int_value(g, "block_count"),
        "n_head": int_value(g, "attention.head_count"), "seq_length": int_value(g, "context_length"),
        "layer_norm_epsilon": float_value(g, "attention.layer_norm_epsilon", 1e-5),
        "tie_word_embeddings": "output.weight" not in g,
    }


def _gpt_neox_json(g: GGUFFile) -> dict[str, Any]:
    # GPTNeoXModel.set_gguf_parameters (conversion/gptneox.py); the RoPE base is not written
    _one_kv_head(g)
    d, heads = int_value(g, "embedding_length"), int_value(g, "attention.head_count")
    warnings.warn(
        f"{g.path}: gptneox MLP activation is exact GELU, as in EleutherAI's GPT-NeoX and HF's GPTNeoXConfig "
        "(hidden_act 'gelu' for Pythia and GPT-NeoX-20B); archlab follows them. llama.cpp computes GELU's tanh "
        "approximation (LLM_FFN_GELU) for this architecture, so its logits differ slightly",
        stacklevel=3,
    )
    return {
        "model_type": "gpt_neox", "vocab_size": vocab_size(g), "hidden_size": d, "num_attention_heads": heads,
        "num_hidden_layers": int_value(g, "block_count"), "intermediate_size": int_value(g, "feed_forward_length"),
        "max_position_embeddings": int_value(g, "context_length"),
        "layer_norm_eps": float_value(g, "attention.layer_norm_epsilon", 1e-5),
        "use_parallel_residual": bool(g.arch_value("use_parallel_residual", True)),
        "rotary_pct": int_value(g, "rope.dimension_count", d // heads) / (d // heads),
        "rotary_emb_base": float_value(g, "rope.freq_base", 10000.0, positive=True),
        "hidden_act": "gelu", "attention_bias": "blk.0.attn_qkv.bias" in g,
        "tie_word_embeddings": "output.weight" not in g,
    }


def _per_head_qkv(heads_key: str):
    """The converters' [all q; all k; all v] rows (BloomModel / GPTNeoXModel.modify_tensors) back
    to Megatron's per-head [q_h; k_h; v_h] blocks, weight or bias."""

    def load(t, hf: dict):
        n = hf[heads_key]
        return t.reshape(3, n, t.shape[0] // 3 // n, *t.shape[1:]).transpose(0, 1).reshape(t.shape)

    return load


def _transposed(t, hf: dict):
    # GPT2Model.modify_tensors transposes HF's Conv1D (in, out) weights into Linear's (out, in)
    return t.T if t.dim() == 2 else t


_GPT2 = Names(
    layer={"ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", "ln_2": "ffn_norm",
           "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"},
    top={"transformer.wte.weight": "token_embd.weight", "transformer.wpe.weight": "position_embd.weight",
         "transformer.ln_f.weight": "output_norm.weight", "transformer.ln_f.bias": "output_norm.bias", "lm_head.weight": "output.weight"},
    prefix="transformer.h.{i}.",
    transforms={m: _transposed for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")},
)
_MEGATRON = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
             "mlp.dense_h_to_4h": "ffn_up", "mlp.dense_4h_to_h": "ffn_down"}
_BLOOM = Names(
    layer={**_MEGATRON, "self_attention.query_key_value": "attn_qkv", "self_attention.dense": "attn_output"},
    top={"transformer.word_embeddings.weight": "token_embd.weight", "lm_head.weight": "output.weight",
         **{f"transformer.{hf}.{w}": f"{ours}.{w}" for hf, ours in (("word_embeddings_layernorm", "token_embd_norm"), ("ln_f", "output_norm"))
            for w in ("weight", "bias")}},
    prefix="transformer.h.{i}.",
    transforms={"self_attention.query_key_value": _per_head_qkv("n_head")},
)
_GPT_NEOX = Names(
    layer={**_MEGATRON, "attention.query_key_value": "attn_qkv", "attention.dense": "attn_output"},
    top={"gpt_neox.embed_in.weight": "token_embd.weight", "embed_out.weight": "output.weight",
         "gpt_neox.final_layer_norm.weight": "output_norm.weight", "gpt_neox.final_layer_norm.bias": "output_norm.bias"},
    prefix="gpt_neox.layers.{i}.",
    transforms={"attention.query_key_value": _per_head_qkv("num_attention_heads")},
)

def _mixtral_json(g: GGUFFile) -> dict[str, Any]:
    # LlamaModel.modify_tensors (conversion/llama.py) writes MixtralForCausalLM as `llama`, its
    # block_sparse_moe experts w1 / w3 / w2 stacked as ffn_gate_exps / ffn_up_exps / ffn_down_exps
    hf = llama_like_json(g, "mixtral")
    hf.update(
        num_local_experts=int_value(g, "expert_count"), num_experts_per_tok=int_value(g, "expert_used_count"),
        intermediate_size=int_value(g, "expert_feed_forward_length", hf["intermediate_size"]),
        sliding_window=None,  # llama.cpp's llama graph has no sliding window
    )
    return hf


_PERMUTED_QK = {"self_attn.q_proj": unpermute_qk("num_attention_heads"), "self_attn.k_proj": unpermute_qk("num_key_value_heads")}
# a `llama` file with experts (llama.expert_count > 0): Mixtral (arch.py picks it)
MIXTRAL = HFBacked(_mixtral_json, Names(transforms=_PERMUTED_QK))

HF_BACKED: dict[str, HFBacked] = {
    "qwen3": HFBacked(_qwen3_json),
    "qwen3moe": HFBacked(_qwen3_moe_json),
    "gemma3": HFBacked(_gemma3_json, Names({**LAYER, **SANDWICH}, norm_shift=1.0)),
    "olmo2": HFBacked(_olmo2_json, Names({**LAYER, **SANDWICH})),
    # SmolLM3Model(LlamaModel): the llama layout, Q/K rows permuted
    "smollm3": HFBacked(_smollm3_json, Names(transforms=_PERMUTED_QK)),
    "gpt2": HFBacked(_gpt2_json, _GPT2),
    "bloom": HFBacked(_bloom_json, _BLOOM),
    "gptneox": HFBacked(_gpt_neox_json, _GPT_NEOX),
}
