"""Tiny GGUF files written from random HF models the way llama.cpp's convert_hf_to_gguf.py writes
them, for the architectures archlab reads through its HF families: tensor names from gguf-py's
own TensorNameMap (not from archlab's tables), metadata with the GGUFWriter calls each model
class's set_gguf_parameters makes, and the converter's layout changes (experts stacked per
projection, Gemma's norms stored as 1 + w, no Q/K permutation outside LlamaModel)."""

from __future__ import annotations

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
Q = gguf.GGMLQuantizationType

ARCH = {"qwen2": gguf.MODEL_ARCH.QWEN2, "qwen3": gguf.MODEL_ARCH.QWEN3, "qwen3moe": gguf.MODEL_ARCH.QWEN3MOE,
        "gemma3": gguf.MODEL_ARCH.GEMMA3, "olmo2": gguf.MODEL_ARCH.OLMO2, "smollm3": gguf.MODEL_ARCH.SMOLLM3,
        "gpt2": gguf.MODEL_ARCH.GPT2, "bloom": gguf.MODEL_ARCH.BLOOM, "gptneox": gguf.MODEL_ARCH.GPTNEOX,
        "deepseek2": gguf.MODEL_ARCH.DEEPSEEK2, "gpt-oss": gguf.MODEL_ARCH.GPT_OSS, "glm4moe": gguf.MODEL_ARCH.GLM4_MOE,
        "mixtral": gguf.MODEL_ARCH.LLAMA, "qwen3next": gguf.MODEL_ARCH.QWEN3NEXT}  # LlamaModel writes MixtralForCausalLM as `llama`
# LlamaModel and its subclasses permute each head's Q/K rows (LlamaModel.permute)
PERMUTED = {"smollm3", "mixtral"}


def _gpt_metadata(w, arch: str, c) -> None:
    """GPT2Model / BloomModel / GPTNeoXModel.set_gguf_parameters."""
    w.add_vocab_size(c.vocab_size)
    if arch == "gpt2":
        w.add_block_count(c.n_layer)
        w.add_context_length(c.n_ctx if hasattr(c, "n_ctx") else c.n_positions)
        w.add_embedding_length(c.n_embd)
        w.add_feed_forward_length(4 * c.n_embd)
        w.add_head_count(c.n_head)
        w.add_layer_norm_eps(c.layer_norm_epsilon)
    elif arch == "bloom":
        w.add_context_length(getattr(c, "seq_length", c.hidden_size))
        w.add_embedding_length(c.hidden_size)
        w.add_feed_forward_length(4 * c.hidden_size)
        w.add_block_count(c.n_layer)
        w.add_head_count(c.n_head)
        w.add_head_count_kv(c.n_head)
        w.add_layer_norm_eps(c.layer_norm_epsilon)
    else:
        w.add_context_length(c.max_position_embeddings)
        w.add_embedding_length(c.hidden_size)
        w.add_block_count(c.num_hidden_layers)
        w.add_feed_forward_length(c.intermediate_size)
        rotary_pct = c.rope_parameters.get("partial_rotary_factor", getattr(c, "rotary_pct", 0.25))
        w.add_rope_dimension_count(int(rotary_pct * (c.hidden_size // c.num_attention_heads)))
        w.add_head_count(c.num_attention_heads)
        w.add_parallel_residual(c.use_parallel_residual)
        w.add_layer_norm_eps(c.layer_norm_eps)


def _deepseek2_metadata(w, c, split_kv_b: bool) -> None:
    """DeepseekV2Model.set_gguf_parameters (conversion/deepseek.py) over TextModel's; with
    split_kv_b=False, the metadata of files written before the *_mla keys and attn_k_b/attn_v_b."""
    w.add_vocab_size(c.vocab_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_freq_base(c.rope_parameters["rope_theta"])
    w.add_expert_used_count(c.num_experts_per_tok)
    sigmoid = c.model_type == "deepseek_v3"
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID if sigmoid else gguf.ExpertGatingFuncType.SOFTMAX)
    if (c.n_group or 1) > 1:
        w.add_expert_group_count(c.n_group)
        w.add_expert_group_used_count(c.topk_group)
    w.add_leading_dense_block_count(c.first_k_dense_replace)
    if c.q_lora_rank is not None:
        w.add_q_lora_rank(c.q_lora_rank)
    w.add_kv_lora_rank(c.kv_lora_rank)
    if split_kv_b:
        w.add_head_count_kv(1)
        w.add_key_length(c.kv_lora_rank + c.qk_rope_head_dim)
        w.add_value_length(c.kv_lora_rank)
        w.add_key_length_mla(c.qk_nope_head_dim + c.qk_rope_head_dim)
        w.add_value_length_mla(c.v_head_dim)
    else:
        w.add_head_count_kv(c.num_attention_heads)
        w.add_key_length(c.qk_nope_head_dim + c.qk_rope_head_dim)
        w.add_value_length(c.v_head_dim)
    w.add_expert_feed_forward_length(c.moe_intermediate_size)
    w.add_expert_count(c.n_routed_experts)
    w.add_expert_shared_count(c.n_shared_experts)
    w.add_expert_weights_scale(c.routed_scaling_factor)
    if getattr(c, "norm_topk_prob", False):
        w.add_expert_weights_norm(True)
    w.add_rope_dimension_count(c.qk_rope_head_dim)
    rope = c.rope_parameters
    if rope.get("rope_type") == "yarn":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(rope["factor"])
        w.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
        w.add_rope_scaling_yarn_log_mul(0.1 * rope["mscale_all_dim"])


def _glm4_moe_metadata(w, c) -> None:
    """Glm4MoeModel.set_gguf_parameters (conversion/glm.py) over TextModel's: block_count counts
    the MTP layers, which test files get one of (blk.{L}, with a nextn tensor)."""
    w.add_vocab_size(c.vocab_size)
    w.add_block_count(c.num_hidden_layers + 1)
    w.add_nextn_predict_layers(1)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_freq_base(c.rope_parameters["rope_theta"])
    w.add_key_length(c.head_dim)
    w.add_value_length(c.head_dim)
    w.add_rope_dimension_count(int(c.head_dim * c.rope_parameters.get("partial_rotary_factor", 0.5)))
    w.add_expert_used_count(c.num_experts_per_tok)
    w.add_expert_count(c.n_routed_experts)
    w.add_expert_feed_forward_length(c.moe_intermediate_size)
    w.add_expert_shared_count(c.n_shared_experts)
    w.add_leading_dense_block_count(c.first_k_dense_replace)
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
    w.add_expert_weights_scale(c.routed_scaling_factor)
    w.add_expert_weights_norm(c.norm_topk_prob)
    if c.n_group > 1:
        w.add_expert_group_count(c.n_group)
        w.add_expert_group_used_count(c.topk_group)


def _qwen3_next_metadata(w, c) -> None:
    """Qwen3NextModel.set_gguf_parameters over Qwen2MoeModel's and TextModel's."""
    w.add_vocab_size(c.vocab_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_freq_base(c.rope_parameters["rope_theta"])
    w.add_key_length(c.head_dim)
    w.add_value_length(c.head_dim)
    w.add_expert_count(c.num_experts)
    w.add_expert_used_count(c.num_experts_per_tok)
    w.add_expert_feed_forward_length(c.moe_intermediate_size)
    w.add_expert_shared_feed_forward_length(c.shared_expert_intermediate_size)
    w.add_ssm_conv_kernel(c.linear_conv_kernel_dim)
    w.add_ssm_state_size(c.linear_key_head_dim)
    w.add_ssm_group_count(c.linear_num_key_heads)
    w.add_ssm_time_step_rank(c.linear_num_value_heads)
    w.add_ssm_inner_size(c.linear_value_head_dim * c.linear_num_value_heads)
    interval = c.layer_types.index("full_attention") + 1  # v5 keeps only the layer_types it derived
    assert c.layer_types == ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(c.num_hidden_layers)]
    w.add_full_attention_interval(interval)
    partial = c.rope_parameters.get("partial_rotary_factor", getattr(c, "partial_rotary_factor", 0.25))
    w.add_rope_dimension_count(int(c.head_dim * partial))


def _qwen3_next_tensor(hf_name: str, a: np.ndarray, c) -> dict[str, np.ndarray] | None:
    """Qwen3NextModel.modify_tensors' changes, as (HF-style name -> array), or None for none."""
    if hf_name.endswith(".A_log"):
        return {hf_name: -np.exp(a)}
    if hf_name.endswith(".dt_bias"):
        return {hf_name.removesuffix(".dt_bias") + ".dt_proj.bias": a}
    if "conv1d" in hf_name:
        return {hf_name: a.squeeze()}
    if hf_name.endswith("norm.weight") and not hf_name.endswith("linear_attn.norm.weight"):
        return {hf_name: a + 1}
    if hf_name.endswith("in_proj_qkvz.weight"):
        dk, dv, hk, hv = c.linear_key_head_dim, c.linear_value_head_dim, c.linear_num_key_heads, c.linear_num_value_heads
        grouped = a.T.reshape(c.hidden_size, hk, 2 * dk + 2 * (hv // hk) * dv)
        q, k, v, z = np.split(grouped, np.cumsum([dk, dk, hv // hk * dv]), axis=-1)
        qkv = np.concatenate([t.reshape(c.hidden_size, -1) for t in (q, k, v)], axis=-1).T
        i = hf_name.split(".")[2]
        return {f"blk.{i}.attn_qkv.weight": qkv, f"blk.{i}.attn_gate.weight": z.reshape(c.hidden_size, -1).T}
    return None


def _metadata(w, arch: str, c, split_kv_b: bool = True) -> None:
    if arch == "qwen3next":
        return _qwen3_next_metadata(w, c)
    if arch == "glm4moe":
        return _glm4_moe_metadata(w, c)
    if arch == "deepseek2":
        return _deepseek2_metadata(w, c, split_kv_b)
    if arch in ("gpt2", "bloom", "gptneox"):
        return _gpt_metadata(w, arch, c)
    # TextModel.set_gguf_parameters (convert_hf_to_gguf.py), and the per-class additions below
    w.add_vocab_size(c.vocab_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    rope = c.rope_parameters.get("full_attention", c.rope_parameters)
    w.add_rope_freq_base(rope["rope_theta"])
    head_dim = getattr(c, "head_dim", None)
    if head_dim is not None:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if arch == "mixtral":  # TextModel.set_gguf_parameters' expert keys
        w.add_expert_count(c.num_local_experts)
        w.add_expert_used_count(c.num_experts_per_tok)
    if arch == "qwen3moe":  # Qwen2MoeModel.set_gguf_parameters
        w.add_expert_count(c.num_experts)
        w.add_expert_used_count(c.num_experts_per_tok)
        w.add_expert_feed_forward_length(c.moe_intermediate_size)
    if arch == "gpt-oss":  # GptOssModel.set_gguf_parameters, TextModel's YaRN keys
        w.add_sliding_window(c.sliding_window)
        w.add_expert_feed_forward_length(c.intermediate_size)
        w.add_expert_count(c.num_local_experts)
        w.add_expert_used_count(c.num_experts_per_tok)
        if rope.get("rope_type") == "yarn":
            w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
            w.add_rope_scaling_factor(rope["factor"])
            w.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
            w.add_rope_scaling_yarn_beta_fast(rope["beta_fast"])
            w.add_rope_scaling_yarn_beta_slow(rope["beta_slow"])
    if arch == "gemma3":  # Gemma3Model.set_gguf_parameters
        w.add_sliding_window(c.sliding_window)
        if rope.get("rope_type", "default") == "linear":
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(rope["factor"])


def _tensors(arch: str, model, split_kv_b: bool = True) -> dict[str, np.ndarray]:
    """GGUF name -> array (torch order) of every tensor the converter writes."""
    c = model.config
    names = gguf.get_tensor_name_map(ARCH[arch], c.num_hidden_layers)
    out = {}
    for hf_name, t in model.state_dict().items():
        if hf_name in ("lm_head.weight", "embed_out.weight") and c.tie_word_embeddings:
            continue
        if hf_name.endswith((".attn.bias", ".attn.masked_bias")):  # GPT-2's causal-mask buffers
            continue
        a = t.detach().float().numpy()
        if arch == "qwen3next" and (changed := _qwen3_next_tensor(hf_name, a, c)) is not None:
            direct = {k: v for k, v in changed.items() if k.startswith("blk.")}
            out.update(direct)
            if direct:
                continue
            (hf_name, a), = changed.items()
        if arch == "bloom":
            hf_name = hf_name.removeprefix("transformer.")  # BloomModel.modify_tensors
        if arch in ("bloom", "gptneox") and "query_key_value" in hf_name:
            # per-head [q_h; k_h; v_h] -> [all q; all k; all v] (BloomModel / GPTNeoXModel.modify_tensors)
            n_head = getattr(c, "n_head", None) or c.num_attention_heads
            a = a.reshape(n_head, 3, -1, *a.shape[1:]).swapaxes(0, 1).reshape(a.shape)
        if arch == "gpt2" and hf_name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
            a = a.T  # GPT2Model.modify_tensors
        if arch in PERMUTED and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
            n_head = c.num_attention_heads if "q_proj" in hf_name else c.num_key_value_heads
            a = a.reshape(n_head, 2, a.shape[0] // n_head // 2, *a.shape[1:]).swapaxes(1, 2).reshape(a.shape)
        stem, _, kind = hf_name.rpartition(".")
        if arch == "gpt-oss" and stem.endswith("mlp.experts"):  # GptOssModel.modify_tensors, unquantized experts
            i = stem.split(".")[2]
            if kind == "gate_up_proj":  # (E, D, 2F), gate / up interleaved
                a = a.swapaxes(1, 2)
                out[f"blk.{i}.ffn_gate_exps.weight"], out[f"blk.{i}.ffn_up_exps.weight"] = a[:, ::2], a[:, 1::2]
            elif kind == "gate_up_proj_bias":
                out[f"blk.{i}.ffn_gate_exps.bias"], out[f"blk.{i}.ffn_up_exps.bias"] = a[..., ::2], a[..., 1::2]
            elif kind == "down_proj":  # (E, F, D)
                out[f"blk.{i}.ffn_down_exps.weight"] = a.swapaxes(1, 2)
            else:
                out[f"blk.{i}.ffn_down_exps.bias"] = a
            continue
        if kind == "sinks":  # GptOssModel.filter_tensors: sinks -> sinks.weight
            stem, kind = f"{stem}.sinks", "weight"
        if stem.endswith("mlp.experts") and kind == "gate_up_proj":  # HF v5 fused: (E, 2F, D), gate first
            i = stem.split(".")[2]
            half = a.shape[1] // 2
            out[f"blk.{i}.ffn_gate_exps.weight"], out[f"blk.{i}.ffn_up_exps.weight"] = a[:, :half], a[:, half:]
            continue
        if stem.endswith("mlp.experts"):  # down_proj (E, D, F)
            stem, kind = f"{stem}.{kind}", "weight"
        if kind == "e_score_correction_bias":  # TextModel.modify_tensors
            stem, kind = f"{stem}.e_score_correction", "bias"
        if split_kv_b and stem.endswith("kv_b_proj"):
            # DeepseekV2Model.modify_tensors: per head, k_b (transposed) and v_b
            c = model.config
            kv_b = a.reshape(c.num_attention_heads, c.qk_nope_head_dim + c.v_head_dim, -1)
            i = stem.split(".")[2]
            out[f"blk.{i}.attn_k_b.weight"] = np.ascontiguousarray(kv_b[:, :c.qk_nope_head_dim].swapaxes(1, 2))
            out[f"blk.{i}.attn_v_b.weight"] = np.ascontiguousarray(kv_b[:, c.qk_nope_head_dim:])
            continue
        if kind not in ("weight", "bias") and (bare := names.get_name(hf_name)) is not None:
            out[bare] = a  # a tensor without a suffix (Mamba-style ssm_a)
            continue
        gguf_name = names.get_name(stem)
        assert gguf_name is not None, f"gguf-py has no name for {hf_name}"
        if arch == "gemma3" and hf_name.endswith("norm.weight"):
            a = a + 1.0  # Gemma3Model.modify_tensors: norm_shift
        out[f"{gguf_name}.{kind}"] = a
    return out


def write_gguf(path, arch: str, model, types=None, vocab=None, split_kv_b: bool = True, fuse_gate_up: bool = False):
    """`model` as llama.cpp's converter writes it; `types(gguf_name)` picks each matrix's
    quantization (norms and biases stay F32, as the converter keeps 1-D tensors); `vocab(writer)`
    adds a vocabulary's metadata."""
    w = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[ARCH[arch]])
    _metadata(w, arch, model.config, split_kv_b)
    if arch == "glm4moe":  # the MTP layer after the decoder layers (Glm4MoeModel: block_count + nextn)
        L, d = model.config.num_hidden_layers, model.config.hidden_size
        w.add_tensor(f"blk.{L}.nextn.eh_proj.weight", np.zeros((d, 2 * d), np.float32))
        w.add_tensor(f"blk.{L}.attn_norm.weight", np.ones(d, np.float32))
    if vocab is not None:
        vocab(w)
    tensors = _tensors(arch, model, split_kv_b)
    if fuse_gate_up:  # TextModel.modify_tensors with fuse_gate_up_exps: (E, 2F, D), gate first
        for i in range(model.config.num_hidden_layers):
            if f"blk.{i}.ffn_gate_exps.weight" in tensors:
                gate, up = tensors.pop(f"blk.{i}.ffn_gate_exps.weight"), tensors.pop(f"blk.{i}.ffn_up_exps.weight")
                tensors[f"blk.{i}.ffn_gate_up_exps.weight"] = np.concatenate([gate, up], axis=1)
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        qtype = Q.F32 if a.ndim == 1 or types is None else types(name)
        if qtype not in (Q.F32, Q.F16) and a.shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0]:
            qtype = Q.F16  # rows shorter than a block stay F16, as llama-quantize leaves them
        if qtype == Q.F32:
            w.add_tensor(name, np.ascontiguousarray(a))
        elif qtype == Q.F16:
            w.add_tensor(name, a.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(np.ascontiguousarray(a), qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
