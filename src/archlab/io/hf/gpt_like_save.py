"""Saving as the pre-Llama HF families besides gpt2: gpt_neox, bloom and openai-gpt (each
config.json the inverse of its reader), with what a config must hold to be that family. As
for the others, save.choose_family's read-back check catches what a `problems` list misses."""

from __future__ import annotations

from typing import Any

from ...model_config import ModelConfig
from .core import HF_ACTIVATION, enable_saving
from .rope import rope_json


def _ungated_problems(cfg: ModelConfig, name: str, position: str, blocks: tuple[str, ...]) -> list[str]:
    """What these LayerNorm + MLP families share: biased LayerNorms, multi-head attention with
    head_dim d_model / n_heads, an ungated MLP with biases in every layer, `position`."""
    p = []
    a, n, f = cfg.resolved_attention, cfg.norm, cfg.resolved_ffn
    if cfg.block not in blocks:
        p.append(f"block={cfg.block!r} ({name}'s residual layout is one of {list(blocks)})")
    if n.kind != "layernorm" or not n.bias:
        p.append(f"norm kind={n.kind!r} bias={n.bias} ({name} uses LayerNorm with a bias)")
    if cfg.position_kind != position:
        p.append(f"position={cfg.position!r} ({name} has {position} positions)")
    if any(s.kind != "global" for s in cfg.layers):
        p.append(f"layer_types={[s.kind for s in cfg.layers]} ({name} attends to every earlier token in every layer)")
    if a.kind != "attention":
        p.append(f"attention kind {a.kind!r} ({name} has multi-head attention)")
    else:
        if a.n_kv_heads != a.n_heads:
            p.append(f"attention.n_kv_heads={a.n_kv_heads} ({name} is multi-head: one key/value head per query head, {a.n_heads})")
        if a.head_dim * a.n_heads != cfg.d_model:
            p.append(f"attention.head_dim={a.head_dim} ({name}'s is d_model / n_heads)")
    if f is None:
        p.append(f"no dense FFN (every {name} layer has an MLP)")
    elif f.kind != "mlp" or not f.bias:
        p.append(f"ffn kind={f.kind!r} bias={f.bias} ({name}'s FFN is an ungated MLP with biases)")
    if cfg.moe is not None:
        p.append(f"moe ({name} has no mixture of experts)")
    return p


# ---- gpt_neox (configuration_gpt_neox.py) -----------------------------------------------------

def _gpt_neox_json(cfg: ModelConfig) -> dict[str, Any]:
    a, f = cfg.resolved_attention, cfg.resolved_ffn
    rope = rope_json(cfg)
    rope["rope_parameters"]["partial_rotary_factor"] = cfg.rope.partial  # GPTNeoXConfig's default is 0.25, not 1
    return {
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.d_model, "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": a.n_heads, "intermediate_size": f.hidden, "hidden_act": HF_ACTIVATION[f.activation],
        "max_position_embeddings": cfg.max_seq_len, "layer_norm_eps": cfg.norm.eps,
        **rope, "rotary_pct": cfg.rope.partial, "rotary_emb_base": cfg.rope.theta,
        "use_parallel_residual": cfg.block == "parallel", "attention_bias": a.qkv_bias,
        "attention_dropout": 0.0, "hidden_dropout": 0.0,
    }


# ---- bloom (configuration_bloom.py) -----------------------------------------------------------

def _bloom_json(cfg: ModelConfig) -> dict[str, Any]:
    return {
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.d_model, "n_layer": cfg.n_layers,
        "n_head": cfg.resolved_attention.n_heads, "layer_norm_epsilon": cfg.norm.eps,
        # not a BloomConfig field (ALiBi has no length limit); our reader keeps the model's max_seq_len in it
        "seq_length": cfg.max_seq_len,
        "apply_residual_connection_post_layernorm": False, "pretraining_tp": 1, "slow_but_exact": False,
        "hidden_dropout": 0.0, "attention_dropout": 0.0,
    }


# ---- openai-gpt (configuration_openai.py) -----------------------------------------------------

# modeling_openai.py ACT_FNS: its "gelu" is GELU's tanh approximation
_AFN = {"gelu_tanh": "gelu", "relu": "relu", "silu": "silu"}


def _openai_gpt_problems(cfg: ModelConfig) -> list[str]:
    p = _ungated_problems(cfg, "GPT-1", "learned", ("post",))
    f = cfg.resolved_ffn
    if f is not None and f.activation not in _AFN:
        p.append(f"ffn.activation={f.activation!r} (GPT-1's afn is one of {sorted(_AFN)} of ours)")
    return p


def _openai_gpt_json(cfg: ModelConfig) -> dict[str, Any]:
    return {
        "vocab_size": cfg.vocab_size, "n_positions": cfg.max_seq_len, "n_embd": cfg.d_model, "n_layer": cfg.n_layers,
        "n_head": cfg.resolved_attention.n_heads, "afn": _AFN[cfg.resolved_ffn.activation],
        "layer_norm_epsilon": cfg.norm.eps, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
    }


enable_saving("gpt_neox", architecture="GPTNeoXForCausalLM", write_config=_gpt_neox_json,
              problems=lambda cfg: _ungated_problems(cfg, "GPT-NeoX", "rope", ("parallel", "pre")))
enable_saving("bloom", architecture="BloomForCausalLM", write_config=_bloom_json,
              problems=lambda cfg: _ungated_problems(cfg, "BLOOM", "alibi", ("pre",)))
enable_saving("openai-gpt", architecture="OpenAIGPTLMHeadModel", problems=_openai_gpt_problems,
              write_config=_openai_gpt_json)
