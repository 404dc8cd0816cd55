"""HF `llama`, and the Llama-style names (model.layers.{i}.self_attn / mlp) later families share."""

from __future__ import annotations

from typing import Any

from ...model_config import ModelConfig
from ..mapping import Rule
from .core import HF_ACTIVATION, CheckpointError, HFFamily, common_problems, register
from .values import bool_field
from .rope import rope_json
from .llama_like import llama_like_config, with_defaults
from .llama_rules import IGNORE, PRE_NORMS, decoder_rules

# what LlamaConfig (configuration_llama.py) fills in when config.json leaves it out
_DEFAULTS = {"rms_norm_eps": 1e-6, "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False}


def _llama_config(hf: dict) -> ModelConfig:
    # pretraining_tp is not read: HF v5's modeling_llama.py never reads it (v4 split the
    # projections into pretraining_tp slices and summed them: the same product), so it is the
    # same model whatever it says
    hf = with_defaults(hf, _DEFAULTS)
    return llama_like_config(hf, family="llama", ffn={"bias": bool_field(hf, "mlp_bias", False)})


def _llama_problems(cfg: ModelConfig) -> list[str]:
    p = common_problems(cfg)
    a, f = cfg.resolved_attention, cfg.resolved_ffn
    if cfg.position_kind != "rope":
        p.append(f"position={cfg.position!r} (LLaMA has rotary positions)")
    else:
        if cfg.rope.partial != 1.0:
            p.append(f"rope.partial={cfg.rope.partial} (LLaMA rotates the whole head)")
    if cfg.norm.kind != "rmsnorm":
        p.append(f"norm.kind={cfg.norm.kind!r} (LLaMA uses RMSNorm)")
    if cfg.d_model % a.n_heads:
        p.append(f"d_model={cfg.d_model} with n_heads={a.n_heads} (HF's LlamaConfig requires hidden_size divisible by the heads)")
    if a.qkv_bias != a.out_bias:
        p.append(f"attention qkv_bias={a.qkv_bias} out_bias={a.out_bias} (LLaMA's attention_bias covers q, k, v and o together)")
    if a.scale is not None:
        p.append(f"attention.scale={a.scale} (LLaMA scales by 1/sqrt(head_dim))")
    if f is None:
        p.append("no dense FFN (every LLaMA layer has a SwiGLU)")
    elif f.kind != "glu":
        p.append(f"ffn.kind={f.kind!r} (LLaMA's FFN is gated: 'glu')")
    if cfg.moe is not None:
        p.append("moe (LLaMA has no mixture of experts)")
    return p


def _llama_json(cfg: ModelConfig) -> dict[str, Any]:
    a = cfg.resolved_attention
    return {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.resolved_ffn.hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": a.n_heads,
        "num_key_value_heads": a.n_kv_heads,
        "head_dim": a.head_dim,
        "hidden_act": HF_ACTIVATION[cfg.resolved_ffn.activation],
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm.eps,
        **rope_json(cfg),
        "attention_bias": a.qkv_bias,
        "mlp_bias": cfg.resolved_ffn.bias,
        "attention_dropout": 0.0,
        "pretraining_tp": 1,
    }


def _llama_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    return decoder_rules(PRE_NORMS)


register(HFFamily(
    ("llama",), _llama_config, _llama_rules, ignore=IGNORE,
    architecture="LlamaForCausalLM", problems=_llama_problems, write_config=_llama_json,
))
