"""Per HF model_type: the config class and a sampler of its fields.

Each sampler draws over the fields the installed transformers' configuration_<type>.py and
modeling_<type>.py honour (read there; the comments name what is unusual). Model types that
archlab reads but that HF builds through another class are listed in ALIASES with the type
that covers them, so every type of archlab's FAMILIES registry is accounted for.

The known open failure classes are in sweep_known.py."""

from __future__ import annotations

import random
from typing import Callable

from sweep_draws import act, base, eps, flip, head_dim_of, heads, layer_types, moe_sizes, rope, sliding_window

SAMPLERS: dict[str, tuple[str, Callable[[random.Random], dict]]] = {}

# archlab model types HF builds through another (text-only) class, or does not know
ALIASES = {
    "gemma3": "gemma3_text",  # Gemma3Config wraps a Gemma3TextConfig and a vision tower
    "llama4": "llama4_text",  # Llama4Config wraps a Llama4TextConfig and a vision tower
    "kimi_k2": "deepseek_v3",  # transformers has no kimi_k2 model_type; Kimi K2 is DeepseekV3ForCausalLM
}


def sampler(model_type: str, cls: str):
    def put(f):
        SAMPLERS[model_type] = (cls, f)
        return f
    return put


# ---- the GPT-2 line ------------------------------------------------------------------------------

@sampler("gpt2", "GPT2Config")
def _gpt2(rng):
    n_head = rng.choice([1, 2, 3, 4, 6])
    n_embd = n_head * rng.choice([8, 12, 16])
    return {**base(rng), "n_embd": n_embd, "n_head": n_head, "n_layer": rng.randint(1, 3), "n_positions": rng.choice([64, 128]),
            "n_inner": rng.choice([None, 2 * n_embd, 40]), "layer_norm_epsilon": eps(rng),
            "activation_function": rng.choice(["gelu_new", "gelu", "relu", "silu", "gelu_fast", "gelu_pytorch_tanh", "quick_gelu", "tanh"]),
            "scale_attn_weights": flip(rng, 0.8), "scale_attn_by_inverse_layer_idx": flip(rng, 0.2),
            "reorder_and_upcast_attn": flip(rng, 0.2), "tie_word_embeddings": flip(rng, 0.7)}


@sampler("openai-gpt", "OpenAIGPTConfig")
def _gpt1(rng):
    n_head = rng.choice([1, 2, 4])
    return {**base(rng, eos=False), "n_embd": n_head * rng.choice([8, 16]), "n_head": n_head, "n_layer": rng.randint(1, 3),
            "n_positions": rng.choice([64, 128]), "afn": rng.choice(["gelu", "relu", "silu", "swish", "gelu_new"]),
            "layer_norm_epsilon": eps(rng), "tie_word_embeddings": flip(rng, 0.7)}


@sampler("bloom", "BloomConfig")
def _bloom(rng):
    n_head = rng.choice([1, 2, 3, 4, 6, 8])
    return {**base(rng), "hidden_size": n_head * rng.choice([8, 16]), "n_head": n_head, "n_layer": rng.randint(1, 3),
            "layer_norm_epsilon": eps(rng), "apply_residual_connection_post_layernorm": flip(rng, 0.2),
            "slow_but_exact": flip(rng, 0.2), "pretraining_tp": rng.choice([1, 1, 2]), "tie_word_embeddings": flip(rng, 0.7)}


@sampler("gpt_neox", "GPTNeoXConfig")
def _neox(rng):
    h = heads(rng, explicit_head_dim=False, gqa=False)
    return {**base(rng), **h, "num_hidden_layers": rng.randint(1, 3), "intermediate_size": rng.choice([48, 96]),
            "max_position_embeddings": 128, "hidden_act": act(rng, ("gelu", "gelu_fast", "gelu_new", "relu", "silu")),
            "rope_parameters": _explicit_partial(rope(rng, head_dim_of(h), partial=True), 0.25), "use_parallel_residual": flip(rng),
            "attention_bias": flip(rng, 0.7), "layer_norm_eps": eps(rng), "tie_word_embeddings": flip(rng, 0.3)}


def _explicit_partial(p: dict, default: float) -> dict:
    """The rotated fraction said even where HF's config class would default it (GPT-NeoX 0.25,
    GLM-4.5 0.5, Qwen3-Next 0.25: their configuration_*.py), so predicates on it see it."""
    return {**p, "partial_rotary_factor": p.get("partial_rotary_factor", default)}


# ---- the Llama line ------------------------------------------------------------------------------

def _llama_common(rng, explicit_head_dim=True, partial=True, types=None):
    h = heads(rng, explicit_head_dim=explicit_head_dim)
    kw = {**base(rng), **h, "num_hidden_layers": rng.randint(1, 3), "intermediate_size": rng.choice([40, 64, 96]),
          "max_position_embeddings": 128, "rms_norm_eps": eps(rng), "tie_word_embeddings": flip(rng, 0.3),
          "hidden_act": act(rng)}
    kw["rope_parameters"] = rope(rng, head_dim_of(h), partial=partial, **({"types": types} if types else {}))
    return kw


@sampler("llama", "LlamaConfig")
def _llama(rng):
    return {**_llama_common(rng, partial=True), "attention_bias": flip(rng, 0.3), "mlp_bias": flip(rng, 0.3),
            "pretraining_tp": 2 if flip(rng, 0.15) else 1}


@sampler("mistral", "MistralConfig")
def _mistral(rng):
    return {**_llama_common(rng), "sliding_window": sliding_window(rng)}


@sampler("mixtral", "MixtralConfig")
def _mixtral(rng):
    n, k = moe_sizes(rng)
    return {**_llama_common(rng), "sliding_window": sliding_window(rng), "num_local_experts": n, "num_experts_per_tok": k,
            "intermediate_size": rng.choice([16, 32])}


def _qwen3_window(rng, n_layers):
    kw = {"use_sliding_window": flip(rng, 0.4), "sliding_window": rng.choice([None, 4, 6, 16])}
    kw["max_window_layers"] = rng.randint(0, n_layers)
    if flip(rng, 0.3):
        kw["layer_types"] = layer_types(rng, n_layers)
    return kw


@sampler("qwen3", "Qwen3Config")
def _qwen3(rng):
    kw = _llama_common(rng)
    return {**kw, **_qwen3_window(rng, kw["num_hidden_layers"]), "attention_bias": flip(rng, 0.3)}


@sampler("qwen3_moe", "Qwen3MoeConfig")
def _qwen3_moe(rng):
    kw = _llama_common(rng)
    n, k = moe_sizes(rng)
    L = kw["num_hidden_layers"] = rng.randint(1, 4)
    kw.update(use_sliding_window=flip(rng, 0.3), sliding_window=rng.choice([4, 6, 16]), num_experts=n, num_experts_per_tok=k,
              moe_intermediate_size=rng.choice([8, 16, 24]), norm_topk_prob=flip(rng), decoder_sparse_step=rng.choice([1, 1, 2, 3]),
              mlp_only_layers=sorted(rng.sample(range(L), rng.randint(0, L - 1))), attention_bias=flip(rng, 0.3))
    return kw


@sampler("qwen2", "Qwen2Config")
def _qwen2(rng):
    # Qwen2Config: sliding_window kept only with use_sliding_window, then from layer
    # max_window_layers on; q/k/v biases are hard-coded (Qwen2Attention), so no bias field.
    # partial_rotary_factor is Llama's whole-head case, drawn in the llama sampler already
    kw = _llama_common(rng, partial=False)
    L = kw["num_hidden_layers"] = rng.randint(1, 4)
    return {**kw, **_qwen3_window(rng, L)}


@sampler("qwen2_moe", "Qwen2MoeConfig")
def _qwen2_moe(rng):
    # Qwen2MoeConfig: sliding layers are the even-indexed ones below max_window_layers;
    # qkv_bias (default true) and a sigmoid-gated shared expert of shared_expert_intermediate_size
    kw = _llama_common(rng, partial=False)
    n, k = moe_sizes(rng)
    L = kw["num_hidden_layers"] = rng.randint(1, 4)
    kw.update(_qwen3_window(rng, L), num_experts=n, num_experts_per_tok=k, moe_intermediate_size=rng.choice([8, 16, 24]),
              shared_expert_intermediate_size=rng.choice([0, 8, 16, 24, 40]), norm_topk_prob=flip(rng),
              decoder_sparse_step=rng.choice([1, 1, 2, 3]), qkv_bias=flip(rng, 0.8),
              mlp_only_layers=sorted(rng.sample(range(L), rng.randint(0, L - 1))))
    return kw


@sampler("olmo2", "Olmo2Config")
def _olmo2(rng):
    kw = _llama_common(rng, explicit_head_dim=False)
    return {**kw, "attention_bias": flip(rng, 0.3)}


@sampler("smollm3", "SmolLM3Config")
def _smollm3(rng):
    kw = _llama_common(rng, explicit_head_dim=False)
    L = kw["num_hidden_layers"] = rng.randint(1, 4)
    kw.update(attention_bias=flip(rng, 0.3), mlp_bias=flip(rng, 0.3), use_sliding_window=flip(rng, 0.4),
              sliding_window=rng.choice([4, 6, 16]))
    if flip(rng):
        kw["no_rope_layer_interval"] = rng.choice([1, 2, 3, 4])
    else:
        kw["no_rope_layers"] = [rng.choice([0, 1]) for _ in range(L)]
    if flip(rng, 0.4):
        kw["layer_types"] = layer_types(rng, L)
    return kw


@sampler("gemma3_text", "Gemma3TextConfig")
def _gemma3(rng):
    kw = _llama_common(rng, types=("default", "linear", "yarn", "llama3"))
    L = kw["num_hidden_layers"] = rng.randint(1, 4)
    drawn_act = kw.pop("hidden_act")
    kw["hidden_activation"] = drawn_act if flip(rng, 0.3) else "gelu_pytorch_tanh"
    kw.update(query_pre_attn_scalar=rng.choice([head_dim_of(kw), 16, 20]), sliding_window=rng.choice([3, 5, 8, 64]),
              attention_bias=flip(rng, 0.3), final_logit_softcapping=rng.choice([None, None, 3.0, 30.0]),
              attn_logit_softcapping=rng.choice([None, None, 0.5, 50.0]), use_bidirectional_attention=flip(rng, 0.1))
    if flip(rng):
        kw["layer_types"] = layer_types(rng, L)
    else:
        kw["sliding_window_pattern"] = rng.randint(1, 4)
    full = kw.pop("rope_parameters")
    kw["rope_parameters"] = {"full_attention": full, "sliding_attention": {
        "rope_type": "default", "rope_theta": rng.choice([10000.0, 100.0])}}
    return kw


@sampler("gpt_oss", "GptOssConfig")
def _gpt_oss(rng):
    kw = _llama_common(rng, types=("yarn", "default", "linear"))
    n, k = moe_sizes(rng)
    L = kw["num_hidden_layers"]
    kw.pop("hidden_act")
    kw.update(num_local_experts=n, num_experts_per_tok=k, intermediate_size=rng.choice([16, 32]),
              sliding_window=rng.choice([3, 6, 16]), attention_bias=flip(rng, 0.7),
              swiglu_limit=rng.choice([7.0, 0.3, 2.0]))
    if flip(rng, 0.2):
        kw["swiglu_alpha"] = rng.choice([1.0, 1.5])
    if flip(rng, 0.4):
        kw["layer_types"] = layer_types(rng, L)
    return kw


@sampler("llama4_text", "Llama4TextConfig")
def _llama4(rng):
    kw = _llama_common(rng, types=("default", "llama3", "linear", "yarn"))
    L = kw["num_hidden_layers"] = rng.randint(1, 4)
    n = rng.choice([1, 2, 4])
    kw.pop("hidden_act")
    kw.update(intermediate_size=rng.choice([16, 32]), intermediate_size_mlp=rng.choice([48, 96]), num_local_experts=n,
              num_experts_per_tok=1, attention_chunk_size=rng.choice([4, 8, 64]), floor_scale=rng.choice([2, 4, 8192]),
              attn_scale=rng.choice([0.1, 0.5]), attn_temperature_tuning=flip(rng, 0.8), use_qk_norm=flip(rng),
              attention_bias=flip(rng, 0.3), interleave_moe_layer_step=rng.choice([1, 2]),
              no_rope_layer_interval=rng.choice([2, 4]), max_position_embeddings=256)
    # Meta's config.json files say the per-layer lists outright (see families.py's hub configs)
    if flip(rng, 0.3):
        kw["no_rope_layers"] = [rng.choice([0, 1]) for _ in range(L)]
    if flip(rng, 0.3):
        kw["moe_layers"] = sorted(rng.sample(range(L), rng.randint(0, L)))
    return kw


# ---- MoE with routing knobs ----------------------------------------------------------------------

def _routing(rng, n_routed):
    """n_group divides the experts; topk_group <= n_group; top-k at most the experts."""
    groups = [g for g in (1, 2, 4) if n_routed % g == 0]
    n_group = rng.choice(groups)
    return {"n_routed_experts": n_routed, "n_group": n_group, "topk_group": rng.randint(1, n_group),
            "num_experts_per_tok": rng.randint(1, min(n_routed, 4)), "n_shared_experts": rng.choice([0, 1, 2]),
            "routed_scaling_factor": rng.choice([1.0, 2.5, round(rng.uniform(0.5, 3.0), 3)]),
            "norm_topk_prob": flip(rng), "moe_intermediate_size": rng.choice([8, 16, 24])}


def _deepseek(rng):
    n_heads = rng.choice([1, 2, 4])
    kw = {**base(rng), "hidden_size": rng.choice([32, 48, 64]), "num_attention_heads": n_heads, "num_key_value_heads": n_heads,
          "num_hidden_layers": rng.randint(1, 3), "intermediate_size": rng.choice([48, 96]), "max_position_embeddings": 256,
          "q_lora_rank": rng.choice([None, 24, 48]), "kv_lora_rank": rng.choice([16, 32]),
          "qk_nope_head_dim": rng.choice([8, 16]), "qk_rope_head_dim": rng.choice([4, 8]), "v_head_dim": rng.choice([8, 12, 16]),
          "rms_norm_eps": eps(rng), "tie_word_embeddings": flip(rng, 0.2), "attention_bias": flip(rng, 0.2),
          "hidden_act": act(rng, ("silu", "silu", "gelu")), **_routing(rng, rng.choice([4, 6, 8]))}
    kw["first_k_dense_replace"] = rng.randint(0, kw["num_hidden_layers"])
    kw["rope_parameters"] = rope(rng, kw["qk_rope_head_dim"], types=("default", "yarn", "linear", "dynamic"))
    if flip(rng, 0.15):  # DeepSeek's own config.json says it; HF's DeepseekV2/V3Config has no such field
        kw["moe_layer_freq"] = 2
    return kw


@sampler("deepseek_v2", "DeepseekV2Config")
def _dsv2(rng):
    kw = _deepseek(rng)
    kw.update(topk_method=rng.choice(["greedy", "group_limited_greedy"]), mlp_bias=flip(rng, 0.2))
    return kw


@sampler("deepseek_v3", "DeepseekV3Config")
def _dsv3(rng):
    return {**_deepseek(rng), "rope_interleave": flip(rng, 0.7)}


@sampler("glm4_moe", "Glm4MoeConfig")
def _glm4_moe(rng):
    kw = _llama_common(rng, partial=True, types=("default", "linear", "yarn"))
    kw.update(_routing(rng, rng.choice([4, 6, 8])), use_qk_norm=flip(rng), attention_bias=flip(rng, 0.5))
    kw["rope_parameters"] = _explicit_partial(kw["rope_parameters"], 0.5)
    kw["first_k_dense_replace"] = rng.randint(0, kw["num_hidden_layers"])
    return kw


@sampler("qwen3_next", "Qwen3NextConfig")
def _qwen3_next(rng):
    kw = _llama_common(rng, types=("default", "linear", "yarn"))
    L = kw["num_hidden_layers"] = rng.randint(1, 4)
    kw["hidden_act"] = rng.choice(["silu", "silu", "silu", kw["hidden_act"]])  # the published models' silu, mostly
    kw["rope_parameters"] = _explicit_partial(kw["rope_parameters"], 0.25)
    n, k = moe_sizes(rng)
    nk = rng.choice([1, 2])
    kw.update(linear_num_key_heads=nk, linear_num_value_heads=nk * rng.choice([1, 2]), linear_key_head_dim=rng.choice([8, 16]),
              linear_value_head_dim=rng.choice([8, 12]), linear_conv_kernel_dim=rng.choice([2, 3, 4]), num_experts=n,
              num_experts_per_tok=k, moe_intermediate_size=rng.choice([8, 16]),
              shared_expert_intermediate_size=rng.choice([0, 8, 16, 32]), norm_topk_prob=flip(rng),
              decoder_sparse_step=rng.choice([1, 1, 2]), mlp_only_layers=sorted(rng.sample(range(L), rng.randint(0, L - 1))),
              attention_bias=flip(rng, 0.3))
    # HF's default plan puts full attention on every 4th layer; a model of DeltaNet layers
    # only crashes HF's cache (get_seq_length), so most draws hold one full-attention layer
    kw["layer_types"] = layer_types(rng, L, ("linear_attention", "full_attention"))
    if flip(rng, 0.8) and "full_attention" not in kw["layer_types"]:
        kw["layer_types"][rng.randrange(L)] = "full_attention"
    return kw


def draw(model_type: str, seed: int, index: int) -> tuple[str, dict]:
    """(HF config class name, its keyword arguments) of case `index`: the same in every process
    for a seed (random.Random seeded by a string uses SHA-512, not hash())."""
    cls, f = SAMPLERS[model_type]
    return cls, f(random.Random(f"{seed}:{model_type}:{index}"))
