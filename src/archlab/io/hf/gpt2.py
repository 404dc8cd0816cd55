"""HF `gpt2`: Conv1D weights stored (in, out), q/k/v fused in c_attn."""

from __future__ import annotations

from typing import Any

from ...model_config import ModelConfig
from ..mapping import Rule, rename
from .core import (
    HF_ACTIVATION, CheckpointError, HFFamily, activation, base_model_alternatives, common_problems, get_field, register,
)
from .gpt_like import block_rules, gpt_like_config


def _flag(hf: dict, key: str, default: bool) -> bool:
    v = hf.get(key, default)
    if not isinstance(v, bool):
        raise CheckpointError(f"config.json: {key}={v!r} (expected true or false)")
    return v


def _gpt2_config(hf: dict) -> ModelConfig:
    # reorder_and_upcast_attn only computes the same scores in float32 (GPT2Attention's
    # _upcast_and_reordered_attn, eager attention only): the same function, read and not used
    _flag(hf, "reorder_and_upcast_attn", False)
    return gpt_like_config(
        hf, family="gpt2", activation=activation(hf, "activation_function"),
        hidden=get_field(hf, "n_inner", 4 * get_field(hf, "n_embd")),
        attention={"scale": None if _flag(hf, "scale_attn_weights", True) else 1.0,
                   "scale_by_inverse_layer": _flag(hf, "scale_attn_by_inverse_layer_idx", False)},
    )


def _gpt2_problems(cfg: ModelConfig) -> list[str]:
    p = common_problems(cfg)
    a, n, f = cfg.resolved_attention, cfg.norm, cfg.resolved_ffn
    if cfg.position != "learned":
        p.append(f"position={cfg.position!r} (GPT-2 has learned absolute positions)")
    if n.kind != "layernorm" or not n.bias:
        p.append(f"norm kind={n.kind!r} bias={n.bias} (GPT-2 uses LayerNorm with a bias)")
    if a.n_kv_heads != a.n_heads:
        p.append(f"attention.n_kv_heads={a.n_kv_heads} (GPT-2 is multi-head: one key/value head per query head, {a.n_heads})")
    if a.head_dim * a.n_heads != cfg.d_model:
        p.append(f"attention.head_dim={a.head_dim} (GPT-2's is d_model / n_heads)")
    if not (a.qkv_bias and a.out_bias):
        p.append(f"attention qkv_bias={a.qkv_bias} out_bias={a.out_bias} (GPT-2's projections all have biases)")
    if a.scale not in (None, 1.0):
        p.append(f"attention.scale={a.scale} (GPT-2 scales by 1/sqrt(head_dim), or by 1 with scale_attn_weights=false)")
    if f is None:
        p.append("no dense FFN (every GPT-2 layer has an MLP)")
    elif f.kind != "mlp" or not f.bias:
        p.append(f"ffn kind={f.kind!r} bias={f.bias} (GPT-2's FFN is an ungated MLP with biases)")
    if cfg.moe is not None:
        p.append("moe (GPT-2 has no mixture of experts)")
    return p


def _gpt2_json(cfg: ModelConfig) -> dict[str, Any]:
    return {
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.max_seq_len,
        "n_embd": cfg.d_model,
        "n_layer": cfg.n_layers,
        "n_head": cfg.resolved_attention.n_heads,
        "n_inner": cfg.resolved_ffn.hidden,
        "activation_function": HF_ACTIVATION[cfg.resolved_ffn.activation],
        "layer_norm_epsilon": cfg.norm.eps,
        "scale_attn_weights": cfg.resolved_attention.scale is None,
        "scale_attn_by_inverse_layer_idx": cfg.resolved_attention.scale_by_inverse_layer,
        "reorder_and_upcast_attn": False,
        # our model has no dropout; the file should not claim any
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
    }


def _gpt2_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    rules = [
        rename("tok_emb.weight", "transformer.wte.weight"),
        rename("pos_emb.weight", "transformer.wpe.weight"),
        rename("norm.weight", "transformer.ln_f.weight"),
        rename("norm.bias", "transformer.ln_f.bias"),
        rename("head.weight", "lm_head.weight"),
    ]
    return base_model_alternatives(rules + block_rules())


register(HFFamily(
    ("gpt2",), _gpt2_config, _gpt2_rules, ignore=(r".*\.attn\.(masked_)?bias$",),
    architecture="GPT2LMHeadModel", problems=_gpt2_problems, write_config=_gpt2_json,
))
