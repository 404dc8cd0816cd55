"""Qwen2 / Qwen2.5 (`qwen2`) and Qwen2-MoE (`qwen2_moe`) cases and published configs, registered
into families.py's CASES and HUB_CONFIGS (families.py imports this module at its end)."""

from __future__ import annotations

from families import hub_config, register
from hf_reference import transformers

QWEN2_BASE = dict(vocab_size=301, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=128, bos_token_id=0, eos_token_id=1)


def qwen2_config(**kw):
    return transformers.Qwen2Config(**{**QWEN2_BASE, **kw})


def qwen2_moe_config(**kw):
    # Qwen2-57B-A14B's shape in small: every layer MoE, a shared expert twice an expert's width
    # behind its sigmoid gate, top-k not renormalised
    base = dict(QWEN2_BASE, num_key_value_heads=2, num_experts=8, num_experts_per_tok=3, moe_intermediate_size=16,
                shared_expert_intermediate_size=32, norm_topk_prob=False)
    return transformers.Qwen2MoeConfig(**{**base, **kw})


def _qkv_bias_only(ours):
    a = ours.config.attention
    assert a.qkv_bias and not a.out_bias
    assert ours.layers[0].attn.wq.bias is not None and ours.layers[0].attn.wo.bias is None


def _sliding_yarn(types: tuple, window: int):
    def check(ours):
        assert ours.config.layer_types == types and ours.config.attention.window == window
        assert ours.config.rope.scaling.kind == "yarn" and ours.config.rope.scaling.factor == 4.0
    return check


def _moe_expect(n_shared: int, ffn_types: tuple | None = None, layer_types: tuple | None = None):
    def check(ours):
        c = ours.config
        assert c.moe.shared_gate and c.moe.n_shared == n_shared
        if ffn_types is not None:
            assert c.ffn_types == ffn_types
        if layer_types is not None:
            assert c.layer_types == layer_types
    return check


# Qwen2.5-7B's shape: GQA, q/k/v biases and no o bias, untied head, theta 1e6
register("qwen2", "qwen2-gqa-bias", lambda: qwen2_config(num_key_value_heads=2, rope_parameters={
    "rope_type": "default", "rope_theta": 1e6}), seed=23, presets=("qwen2.5-7b", "qwen2.5-72b"), expect=_qkv_bias_only,
    bad_fields=(({"hidden_act": "mish"}, "hidden_act"), ({"num_key_value_heads": 3}, "num_key_value_heads: must divide num_attention_heads"),
                ({"layer_types": ["full_attention", "sliding_attention"]}, "use_sliding_window")))
# Qwen2's sliding layers (from max_window_layers on; window 6 < the 37-token test sequence),
# MQA, head_dim not hidden / heads, tied head, and the YaRN scaling Qwen2.5's model cards add
# for long context (factor 4 of an original 16 positions here, so it acts within 37 tokens)
register("qwen2", "qwen2-sliding-headdim-tied", lambda: qwen2_config(
    num_hidden_layers=3, num_key_value_heads=1, head_dim=12, use_sliding_window=True, sliding_window=6,
    max_window_layers=1, tie_word_embeddings=True, rope_parameters={
        "rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0, "original_max_position_embeddings": 16}), seed=23, expect=_sliding_yarn(("global", "sliding", "sliding"), 6))
register("qwen2", "qwen2moe-57b-shape", qwen2_moe_config, seed=23, presets=("qwen2-57b-a14b", "qwen1.5-moe-a2.7b"),
         expect=_moe_expect(2), fused_experts=True,
         bad_fields=(({"num_experts_per_tok": 9}, "num_experts_per_tok"),
                     ({"qkv_bias": "yes"}, "qkv_bias"),
                     ({"norm_topk_prob": None}, "norm_topk_prob"),
                     ({"use_sliding_window": True, "sliding_window": 0,
                       "layer_types": ["sliding_attention", "full_attention"]}, "sliding_window")))
# dense layers among the MoE ones (decoder_sparse_step 2, mlp_only_layers), renormalised top-k,
# no q/k/v biases (qkv_bias false), tied head, and Qwen2MoE's own sliding rule: the even layers
# below max_window_layers (window 7)
register("qwen2", "qwen2moe-mixed-sliding", lambda: qwen2_moe_config(
    num_hidden_layers=4, num_key_value_heads=4, num_experts=6, num_experts_per_tok=2, decoder_sparse_step=2,
    mlp_only_layers=[3], norm_topk_prob=True, qkv_bias=False, tie_word_embeddings=True, use_sliding_window=True,
    sliding_window=7, max_window_layers=3, shared_expert_intermediate_size=16), seed=23,
    expect=_moe_expect(1, ffn_types=("dense", "moe", "dense", "dense"),
                       layer_types=("sliding", "global", "sliding", "global")))

# a shared expert not a whole number of experts wide (24 = 1.5 x 16): HF accepts any width
def _shared_width(width: int):
    def check(ours):
        assert ours.config.moe.shared_width == width and ours.layers[0].ffn.shared.up.weight.shape[0] == width
    return check


register("qwen2", "qwen2moe-odd-shared", lambda: qwen2_moe_config(shared_expert_intermediate_size=24), seed=23,
         expect=_shared_width(24))


def _qwen2_hub(**kw) -> dict:
    """A Qwen2 config.json as Qwen publishes it (transformers 4.40 field names)."""
    return {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
            "eos_token_id": 151643, "hidden_act": "silu", "initializer_range": 0.02, "model_type": "qwen2",
            "rope_theta": 1000000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
            "use_sliding_window": False, **kw}


# Qwen/Qwen2.5-7B, as copied in github.com/citsjtu2020/LLM-Prof sglang/Model_Config.md
hub_config("qwen2.5-7b", _qwen2_hub(
    hidden_size=3584, intermediate_size=18944, max_position_embeddings=131072, max_window_layers=28,
    num_attention_heads=28, num_hidden_layers=28, num_key_value_heads=4, rms_norm_eps=1e-06,
    sliding_window=131072, transformers_version="4.40.1", use_mrope=False, vocab_size=152064))
# Qwen/Qwen2-57B-A14B, as copied in github.com/NVIDIA/TensorRT-LLM (tests, QWEN2_57B_A14B_CONFIG)
hub_config("qwen2-57b-a14b", {
    "architectures": ["Qwen2MoeForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "decoder_sparse_step": 1, "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 3584,
    "initializer_range": 0.02, "intermediate_size": 18944, "max_position_embeddings": 131072,
    "max_window_layers": 28, "model_type": "qwen2_moe", "moe_intermediate_size": 2560, "norm_topk_prob": False,
    "num_attention_heads": 28, "num_experts": 64, "num_experts_per_tok": 8, "num_hidden_layers": 28,
    "num_key_value_heads": 4, "output_router_logits": False, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "router_aux_loss_coef": 0.001, "shared_expert_intermediate_size": 20480, "sliding_window": 131072,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.40.1", "use_cache": True,
    "use_sliding_window": False, "vocab_size": 151936})
