"""A minimal reproducer per failure class the sweep or issue 11 found: the smallest config that
shows it. For a class still open (sweep_known.py) tests/test_sweep_hf.py checks that it still
differs from HF; once the class is fixed it leaves the open lists and its reproducer stays here
as a regression test that must equal HF."""

from __future__ import annotations

_DS = dict(vocab_size=101, hidden_size=32, intermediate_size=48, moe_intermediate_size=16, num_hidden_layers=2,
           num_attention_heads=2, num_key_value_heads=2, q_lora_rank=None, kv_lora_rank=16, qk_nope_head_dim=8,
           qk_rope_head_dim=4, v_head_dim=8, n_routed_experts=4, num_experts_per_tok=2, n_group=1, topk_group=1,
           n_shared_experts=1, first_k_dense_replace=0, rms_norm_eps=1e-6, max_position_embeddings=128)
_LLAMA = dict(vocab_size=101, hidden_size=64, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
              num_key_value_heads=4, max_position_embeddings=128)
_YARN = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 16}
_L4 = dict(vocab_size=101, hidden_size=32, intermediate_size=32, intermediate_size_mlp=64, num_hidden_layers=4,
           num_attention_heads=2, num_key_value_heads=2, head_dim=16, num_local_experts=2, attention_chunk_size=64,
           max_position_embeddings=256)
_QN = dict(vocab_size=101, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
           num_key_value_heads=1, head_dim=16, linear_num_key_heads=1, linear_num_value_heads=1, linear_key_head_dim=8,
           linear_value_head_dim=8, num_experts=2, num_experts_per_tok=1, moe_intermediate_size=16,
           shared_expert_intermediate_size=16, layer_types=["linear_attention", "full_attention"],
           max_position_embeddings=128)
_GEMMA_SLIDING = {"rope_type": "default", "rope_theta": 10000.0}

# class -> (model type, HF config class, kwargs)
REPRODUCERS: dict[str, tuple[str, str, dict]] = {
    "deepseek latent-norm eps": ("deepseek_v3", "DeepseekV3Config", {**_DS, "rms_norm_eps": 1e-2}),
    "deepseek_v2 norm_topk_prob": ("deepseek_v2", "DeepseekV2Config", {**_DS, "norm_topk_prob": True}),
    "deepseek_v2 mlp_bias": ("deepseek_v2", "DeepseekV2Config", {**_DS, "mlp_bias": True}),
    "deepseek n_shared_experts 0": ("deepseek_v3", "DeepseekV3Config", {**_DS, "n_shared_experts": 0}),
    "deepseek group routing with top-k > kept experts": (
        "deepseek_v3", "DeepseekV3Config", {**_DS, "n_routed_experts": 8, "n_group": 4, "topk_group": 1, "num_experts_per_tok": 3}),
    "llama4 qk-norm with yarn": ("llama4_text", "Llama4TextConfig", {**_L4, "use_qk_norm": True, "rope_parameters": _YARN}),
    "bloom slow_but_exact": ("bloom", "BloomConfig", dict(vocab_size=101, hidden_size=32, n_head=2, n_layer=1,
                                                         pretraining_tp=2, slow_but_exact=True)),
    "bloom apply_residual_connection_post_layernorm": (
        "bloom", "BloomConfig", dict(vocab_size=101, hidden_size=32, n_head=2, n_layer=1,
                                     apply_residual_connection_post_layernorm=True)),
    "rope dynamic/longrope": ("llama", "LlamaConfig", {**_LLAMA, "rope_parameters": {
        "rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}}),
    "qwen3_next shared width / rotary rounding": ("qwen3_next", "Qwen3NextConfig", {
        **_QN, "shared_expert_intermediate_size": 24}),
    "smollm3 sliding with use_sliding_window false": ("smollm3", "SmolLM3Config", {
        **_LLAMA, "num_hidden_layers": 2, "pad_token_id": 0, "use_sliding_window": False, "sliding_window": 4,
        "layer_types": ["sliding_attention", "full_attention"]}),
    "gpt2 quick_gelu": ("gpt2", "GPT2Config", dict(vocab_size=101, n_embd=32, n_head=2, n_layer=1,
                                                   activation_function="quick_gelu")),
    "gpt2 scale_attn_by_inverse_layer_idx": ("gpt2", "GPT2Config", dict(vocab_size=101, n_embd=32, n_head=2, n_layer=2,
                                                                        scale_attn_by_inverse_layer_idx=True)),
    "gpt_oss swiglu_alpha": ("gpt_oss", "GptOssConfig", dict(vocab_size=101, hidden_size=32, intermediate_size=32,
                                                             num_hidden_layers=1, num_attention_heads=2,
                                                             num_key_value_heads=1, head_dim=16, num_local_experts=2,
                                                             num_experts_per_tok=1, swiglu_alpha=1.0)),
    "moe_layer_freq": ("deepseek_v3", "DeepseekV3Config", {**_DS, "moe_layer_freq": 2}),
    # found by the sweep
    # HF's longrope broadcasts a single factor to every frequency (here 2: 3 of 12 dimensions)
    "longrope single factor refused as position.scaling.short_factor": ("gpt_neox", "GPTNeoXConfig", dict(
        vocab_size=101, hidden_size=36, intermediate_size=48, num_hidden_layers=1, num_attention_heads=3,
        max_position_embeddings=128, rope_parameters={
            "rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.25,
            "original_max_position_embeddings": 16, "factor": 2.0, "short_factor": [1.5], "long_factor": [3.0]})),
    "gpt2 tanh activation refused": ("gpt2", "GPT2Config", dict(vocab_size=101, n_embd=32, n_head=2, n_layer=1,
                                                           activation_function="tanh")),
    "llama pretraining_tp > 1 refused": ("llama", "LlamaConfig", {**_LLAMA, "pretraining_tp": 2}),
    "qwen3_next non-silu hidden_act refused": ("qwen3_next", "Qwen3NextConfig", {**_QN, "hidden_act": "gelu"}),
    "qwen3_next shared_expert_intermediate_size 0 refused": ("qwen3_next", "Qwen3NextConfig", {
        **_QN, "shared_expert_intermediate_size": 0}),
    "qwen2_moe shared_expert_intermediate_size 0 refused": ("qwen2_moe", "Qwen2MoeConfig", dict(
        vocab_size=101, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, num_experts=2, num_experts_per_tok=1, moe_intermediate_size=16,
        shared_expert_intermediate_size=0, max_position_embeddings=128)),
    "partial_rotary_factor ignored by HF's Llama-style attention": ("llama", "LlamaConfig", {**_LLAMA, "rope_parameters": {
        "rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}}),
    "gemma3 yarn truncate=false per layer type": ("gemma3_text", "Gemma3TextConfig", dict(
        vocab_size=101, hidden_size=96, intermediate_size=96, num_hidden_layers=1, num_attention_heads=6,
        num_key_value_heads=6, head_dim=16, query_pre_attn_scalar=16, sliding_window=5, layer_types=["full_attention"],
        max_position_embeddings=128, rope_parameters={
            "full_attention": {**_YARN, "factor": 8.0, "original_max_position_embeddings": 32, "truncate": False},
            "sliding_attention": _GEMMA_SLIDING})),
    "llama4 temperature tuning without NoPE layers refused": (
        "llama4_text", "Llama4TextConfig", {**_L4, "num_hidden_layers": 2, "no_rope_layer_interval": 4}),
    "odd rotary dims refused as position.partial": ("gpt_neox", "GPTNeoXConfig", dict(
        vocab_size=101, hidden_size=36, intermediate_size=48, num_hidden_layers=1, num_attention_heads=3,
        max_position_embeddings=128, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                      "partial_rotary_factor": 0.75})),
    "MoE-less deepseek routing refused by internal names": ("deepseek_v3", "DeepseekV3Config", {
        **_DS, "num_hidden_layers": 1, "first_k_dense_replace": 1, "n_group": 4, "topk_group": 2}),
}
