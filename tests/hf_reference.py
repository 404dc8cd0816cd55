"""Tiny random HF transformers models for parity tests: every weight random, saved to disk
with save_pretrained, so archlab loads exactly what HF's own writer produced."""

from __future__ import annotations

from pathlib import Path

import torch

transformers = __import__("pytest").importorskip("transformers")


def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.1) -> None:
    """Every floating tensor random: weights, biases, norm weights, buffers such as
    DeepSeek-V3's score-correction bias. Norm weights stay near 1 so activations stay O(1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            noise = torch.randn(t.shape, generator=g, dtype=torch.float32) * std
            if "norm" in name or name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                noise = noise + 1.0
            t.copy_(noise.to(t.dtype))


def make_hf(config, seed: int = 0):
    """An HF causal LM for `config`, all weights random, eager attention, eval mode."""
    config._attn_implementation = "eager"
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    randomize(model, seed)
    return model.eval()


def save_hf(model, directory: Path, **kwargs) -> Path:
    model.save_pretrained(directory, **kwargs)
    return directory


def hf_param_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- one small config per family, every optional part switched on somewhere ---------------

def gpt2_configs() -> dict:
    C = transformers.GPT2Config
    return {
        "gpt2": C(vocab_size=301, n_positions=64, n_embd=48, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0),
        "gpt2-ninner-gelu": C(vocab_size=263, n_positions=48, n_embd=32, n_layer=3, n_head=2, n_inner=80,
                              activation_function="gelu", bos_token_id=0, eos_token_id=0),
    }


def llama_configs() -> dict:
    C = transformers.LlamaConfig
    base = dict(vocab_size=301, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                max_position_embeddings=128, bos_token_id=0, eos_token_id=1)
    return {
        # GQA with 1 < n_kv_heads < n_heads and Llama 3.1's frequency scaling
        "llama-gqa-llama3rope": C(**base, num_attention_heads=8, num_key_value_heads=2, rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
        "llama-mqa": C(**base, num_attention_heads=4, num_key_value_heads=1),
        "llama-mha-bias-tied": C(**{**base, "num_hidden_layers": 3}, num_attention_heads=4, num_key_value_heads=4,
                                 attention_bias=True, mlp_bias=True, tie_word_embeddings=True),
        # head_dim not equal to hidden_size / n_heads, as Gemma and Qwen3 do
        "llama-headdim-linear": C(**base, num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                                  rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}),
    }


def _deepseek_base(**kw) -> dict:
    base = dict(vocab_size=301, hidden_size=64, intermediate_size=96, moe_intermediate_size=24,
                num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=32, qk_nope_head_dim=16,
                qk_rope_head_dim=8, v_head_dim=12, first_k_dense_replace=1, max_position_embeddings=256,
                bos_token_id=0, eos_token_id=1)
    base.update(kw)
    return base


_YARN = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64,
         "beta_fast": 32.0, "beta_slow": 1.0}


def deepseek_v2_configs() -> dict:
    C = transformers.DeepseekV2Config
    return {
        # DeepSeek-V2 shape: compressed query, group-limited routing, 2 shared experts, YaRN with mscale
        "dsv2-qlora-groups-yarn": C(**_deepseek_base(
            q_lora_rank=48, n_routed_experts=8, num_experts_per_tok=3, n_group=4, topk_group=2,
            topk_method="group_limited_greedy", n_shared_experts=2, routed_scaling_factor=1.5,
            rope_parameters={**_YARN, "mscale": 0.707, "mscale_all_dim": 0.707})),
        # DeepSeek-V2-Lite shape: uncompressed query, greedy routing
        "dsv2-lite-greedy": C(**_deepseek_base(
            q_lora_rank=None, n_routed_experts=6, num_experts_per_tok=2, topk_method="greedy",
            n_shared_experts=1, routed_scaling_factor=1.0)),
    }


def deepseek_v3_configs() -> dict:
    C = transformers.DeepseekV3Config
    return {
        # DeepSeek-V3 shape: sigmoid routing, score-correction bias, groups by top-2 sum, YaRN
        "dsv3-qlora-groups-yarn": C(**_deepseek_base(
            q_lora_rank=48, n_routed_experts=8, num_experts_per_tok=3, n_group=4, topk_group=2,
            n_shared_experts=1, routed_scaling_factor=2.5, norm_topk_prob=True,
            rope_parameters={**_YARN, "mscale": 1.0, "mscale_all_dim": 1.0})),
        "dsv3-noqlora-nonorm": C(**_deepseek_base(
            q_lora_rank=None, n_routed_experts=6, num_experts_per_tok=2, n_group=1, topk_group=1,
            n_shared_experts=2, routed_scaling_factor=1.0, norm_topk_prob=False)),
        # rope_interleave=false: the checkpoint already uses rotate-half layout
        "dsv3-rope-halves": C(**_deepseek_base(
            q_lora_rank=40, n_routed_experts=8, num_experts_per_tok=2, n_group=2, topk_group=1,
            n_shared_experts=1, rope_interleave=False)),
    }


FAMILY_CONFIGS = {
    "gpt2": gpt2_configs,
    "llama": llama_configs,
    "deepseek_v2": deepseek_v2_configs,
    "deepseek_v3": deepseek_v3_configs,
}


def all_configs() -> list[tuple[str, str, object]]:
    return [(fam, name, cfg) for fam, fn in FAMILY_CONFIGS.items() for name, cfg in fn().items()]
