"""HF `gpt2`: Conv1D weights stored (in, out), q/k/v fused in c_attn."""

from __future__ import annotations

from typing import Any

import torch

from ...config import AttentionConfig, FFNConfig, ModelConfig, NormConfig
from ..mapping import Rule, Tensors, rename
from .core import (
    base_model_alternatives,
    HF_ACTIVATION,
    CheckpointError,
    HFFamily,
    activation,
    common_problems,
    get_field,
    register,
)


def _gpt2_config(hf: dict) -> ModelConfig:
    if hf.get("scale_attn_by_inverse_layer_idx"):
        raise CheckpointError("config.json: scale_attn_by_inverse_layer_idx=true is not supported")
    d = get_field(hf, "n_embd")
    return ModelConfig(
        name=str(hf.get("model_type")),
        family="gpt2",
        vocab_size=get_field(hf, "vocab_size"),
        d_model=d,
        n_layers=get_field(hf, "n_layer"),
        max_seq_len=get_field(hf, "n_positions"),
        position="learned",
        rope=None,
        norm=NormConfig("layernorm", eps=get_field(hf, "layer_norm_epsilon", 1e-5), bias=True),
        attention=AttentionConfig(
            n_heads=get_field(hf, "n_head"),
            qkv_bias=True,
            out_bias=True,
            scale=None if hf.get("scale_attn_weights", True) else 1.0,
        ),
        ffn=FFNConfig(hidden=get_field(hf, "n_inner", 4 * d), kind="mlp", activation=activation(hf, "activation_function"), bias=True),
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
    )


def _t(ts: Tensors, cfg: ModelConfig) -> Tensors:
    # GPT-2 stores Linear weights as Conv1D: (in, out)
    return [t.T.contiguous() for t in ts]


def _split_qkv(ts: Tensors, cfg: ModelConfig) -> Tensors:
    w = ts[0]
    fused = w.T if w.dim() == 2 else w  # weight (in, 3d) -> (3d, in); bias (3d,)
    return [p.contiguous() for p in fused.chunk(3, dim=0)]


def _fuse_qkv(ts: Tensors, cfg: ModelConfig) -> Tensors:
    fused = torch.cat(ts, dim=0)
    return [fused.T.contiguous() if fused.dim() == 2 else fused]


def _gpt2_problems(cfg: ModelConfig) -> list[str]:
    p = common_problems(cfg)
    a, n, f = cfg.attention, cfg.norm, cfg.ffn
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
    if f.kind != "mlp" or not f.bias:
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
        "n_head": cfg.attention.n_heads,
        "n_inner": cfg.ffn.hidden,
        "activation_function": HF_ACTIVATION[cfg.ffn.activation],
        "layer_norm_epsilon": cfg.norm.eps,
        "scale_attn_weights": cfg.attention.scale is None,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        # our model has no dropout; the file should not claim any
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
    }


def _gpt2_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    p = "transformer.h.{i}."
    rules = [
        rename("tok_emb.weight", "transformer.wte.weight"),
        rename("pos_emb.weight", "transformer.wpe.weight"),
        rename("norm.weight", "transformer.ln_f.weight"),
        rename("norm.bias", "transformer.ln_f.bias"),
        rename("head.weight", "lm_head.weight"),
    ]
    for ours, theirs in (("attn_norm", "ln_1"), ("ffn_norm", "ln_2")):
        for w in ("weight", "bias"):
            rules.append(rename(f"layers.{{i}}.{ours}.{w}", f"{p}{theirs}.{w}"))
    for w in ("weight", "bias"):
        rules.append(Rule(tuple(f"layers.{{i}}.attn.{n}.{w}" for n in ("wq", "wk", "wv")), (f"{p}attn.c_attn.{w}",), _split_qkv, _fuse_qkv))
    rules += [
        rename("layers.{i}.attn.wo.weight", p + "attn.c_proj.weight", _t, _t),
        rename("layers.{i}.attn.wo.bias", p + "attn.c_proj.bias"),
        rename("layers.{i}.ffn.up.weight", p + "mlp.c_fc.weight", _t, _t),
        rename("layers.{i}.ffn.up.bias", p + "mlp.c_fc.bias"),
        rename("layers.{i}.ffn.down.weight", p + "mlp.c_proj.weight", _t, _t),
        rename("layers.{i}.ffn.down.bias", p + "mlp.c_proj.bias"),
    ]
    return base_model_alternatives(rules)



register(HFFamily(
    ("gpt2",), _gpt2_config, _gpt2_rules, ignore=(r".*\.attn\.(masked_)?bias$",),
    architecture="GPT2LMHeadModel", problems=_gpt2_problems, write_config=_gpt2_json,
))
