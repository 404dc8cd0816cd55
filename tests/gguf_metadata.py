"""The metadata llama.cpp's converter writes for each architecture (convert_hf_to_gguf.py /
conversion/*.py: TextModel.set_gguf_parameters and each model class's additions), written
with gguf-py's GGUFWriter from an HF config; gguf_convert.py writes the tensors."""

from __future__ import annotations

import pytest

gguf = pytest.importorskip("gguf")


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


def metadata(w, arch: str, c, split_kv_b: bool = True) -> None:
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
    # Llama4Model swaps intermediate_size_mlp in as intermediate_size before TextModel writes it
    w.add_feed_forward_length(c.intermediate_size_mlp if arch == "llama4" else c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    rope = c.rope_parameters.get("full_attention", c.rope_parameters)
    w.add_rope_freq_base(rope["rope_theta"])
    head_dim = getattr(c, "head_dim", None)
    if head_dim is not None:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if arch == "llama4":  # Llama4Model.set_gguf_parameters: feed_forward_length is intermediate_size_mlp
        w.add_expert_count(c.num_local_experts)
        w.add_expert_used_count(c.num_experts_per_tok)
        w.add_interleave_moe_layer_step(c.interleave_moe_layer_step)
        w.add_expert_feed_forward_length(c.intermediate_size)
    if arch == "mixtral":  # TextModel.set_gguf_parameters' expert keys
        w.add_expert_count(c.num_local_experts)
        w.add_expert_used_count(c.num_experts_per_tok)
    if arch in ("qwen3moe", "qwen2moe"):  # TextModel's expert keys, Qwen2MoeModel.set_gguf_parameters
        w.add_expert_count(c.num_experts)
        w.add_expert_used_count(c.num_experts_per_tok)
        w.add_expert_feed_forward_length(c.moe_intermediate_size)
    if arch == "qwen2moe":
        w.add_expert_shared_feed_forward_length(c.shared_expert_intermediate_size)
    if rope.get("rope_type") == "yarn":  # TextModel's YaRN keys (each where config.json has it)
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(rope["factor"])
        w.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
        if rope.get("attention_factor") is not None:
            w.add_rope_scaling_yarn_attn_factor(rope["attention_factor"])
        if rope.get("beta_fast") is not None:
            w.add_rope_scaling_yarn_beta_fast(rope["beta_fast"])
        if rope.get("beta_slow") is not None:
            w.add_rope_scaling_yarn_beta_slow(rope["beta_slow"])
    if arch == "gpt-oss":  # GptOssModel.set_gguf_parameters
        w.add_sliding_window(c.sliding_window)
        w.add_expert_feed_forward_length(c.intermediate_size)
        w.add_expert_count(c.num_local_experts)
        w.add_expert_used_count(c.num_experts_per_tok)
    if arch == "gemma3":  # Gemma3Model.set_gguf_parameters
        w.add_sliding_window(c.sliding_window)
        if rope.get("rope_type", "default") == "linear":
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(rope["factor"])
