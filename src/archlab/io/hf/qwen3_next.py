"""HF `qwen3_next` (Qwen3-Next-80B-A3B): Gated DeltaNet linear-attention layers and gated
full-attention layers as `layer_types` says, MoE with a gated shared expert.

# diff with qwen3_moe (modeling_qwen3_next.py)
- Qwen3NextGatedDeltaNet ("linear_attention" layers, nn/deltanet.py). in_proj_qkvz rows are
  grouped per key head g: [q_g (dk) | k_g (dk) | v_g (r dv) | z_g (r dv)] with r = value
  heads per key head (fix_query_key_value_ordering), in_proj_ba likewise [b_g (r) | a_g (r)];
  ours are [q | k | v | z] and [b | a] with value head g r + j at row block g r + j, so the rows
  are reordered here. conv1d.weight (C, 1, K) over channels [q | k | v] (already plain) is
  stored as (C, K). hidden_act is also the activation after the convolution.
- Qwen3NextAttention: q_proj holds each head's query and output gate, [q_h | g_h] per head
  (AttentionConfig.output_gate keeps that layout); QK-norm per head; RoPE on the first
  partial_rotary_factor of each head (0.25 when config.json has none).
- Qwen3NextRMSNorm is zero-centred: (1 + w) (NormConfig.unit_offset), block, final and QK
  norms alike; the DeltaNet's own gated norm has a plain weight (Qwen3NextRMSNormGated).
- Qwen3NextSparseMoeBlock: softmax router, top-k, renormalised when norm_topk_prob; the
  shared expert (shared_expert_intermediate_size) scaled by sigmoid(shared_expert_gate(x)).
  A layer is MoE when num_experts > 0, (i + 1) % decoder_sparse_step == 0 and i is not in
  mlp_only_layers; otherwise a dense MLP of intermediate_size.
- mtp.* (the multi-token-prediction head) is not part of the model and is skipped.
"""

from __future__ import annotations

from typing import Any

import torch

from ...model_config import ConfigError, DeltaNetConfig, ModelConfig
from ..mapping import Rule, Tensors, rename
from .core import HFFamily, activation, in_config_json_names, register
from .values import int_field
from .llama_like import gated_shared_moe, layer_types, llama_like_config, positive_int, rms_norm, rope, sparse_ffn_types, with_defaults
from .llama_rules import (ATTN, IGNORE, PRE_NORMS, decoder_rules, expert_rules, no_gated_shared_expert, shared_expert_rules,
                          unused_shared_gate)

# Qwen3NextConfig's class defaults for the knobs a config.json may leave out (sizes are required)
DEFAULTS: dict[str, Any] = {
    "hidden_act": "silu",
    "rms_norm_eps": 1e-6,
    "head_dim": 256,
    "attention_bias": False,
    "linear_conv_kernel_dim": 4,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "num_experts": 512,
    "norm_topk_prob": True,
    "tie_word_embeddings": False,
}

LAYER_TYPES = {"linear_attention": "linear", "full_attention": "global"}


# archlab's DeltaNetConfig fields -> Qwen3NextConfig's
_DELTANET_NAMES = {
    "linear_attention.n_k_heads": "linear_num_key_heads", "n_k_heads": "linear_num_key_heads",
    "linear_attention.n_v_heads": "linear_num_value_heads", "n_v_heads": "linear_num_value_heads",
}


def _deltanet(hf: dict, act: str) -> DeltaNetConfig:
    try:
        return DeltaNetConfig(
            n_k_heads=positive_int(hf, "linear_num_key_heads"),
            n_v_heads=positive_int(hf, "linear_num_value_heads"),
            k_head_dim=positive_int(hf, "linear_key_head_dim"),
            v_head_dim=positive_int(hf, "linear_value_head_dim"),
            conv_kernel=positive_int(hf, "linear_conv_kernel_dim"),
            conv_activation=act,  # Qwen3NextGatedDeltaNet: self.activation = config.hidden_act, after conv1d
        )
    except ConfigError as e:
        raise in_config_json_names(e, _DELTANET_NAMES) from None


def _qwen3_next_config(hf: dict) -> ModelConfig:
    hf = with_defaults(hf, DEFAULTS)
    act = activation(hf, "hidden_act")
    n_layers = positive_int(hf, "num_hidden_layers")
    if "partial_rotary_factor" not in hf:  # Qwen3NextConfig.__post_init__'s kwargs.setdefault: fills the RoPE dict
        hf = {**hf, "partial_rotary_factor": 0.25}
    # Qwen3NextConfig.__post_init__: every full_attention_interval-th layer is full attention
    interval = positive_int(hf, "full_attention_interval", 4)
    types = layer_types(hf, n_layers, ["linear_attention" if (i + 1) % interval else "full_attention" for i in range(n_layers)],
                        LAYER_TYPES)
    ffn_types = sparse_ffn_types(hf, n_layers, int_field(hf, "num_experts", lo=0))
    norm = rms_norm(hf, unit_offset=True)
    return llama_like_config(
        hf, family="qwen3_next", n_layers=n_layers, norm=norm, layer_types=types, ffn_types=ffn_types,
        position=rope(hf, 10000.0, honours_partial=True),  # Qwen3NextAttention rotates the first cos.shape[-1] dims
        attention={"head_dim": positive_int(hf, "head_dim"), "qk_norm": norm, "qk_norm_scope": "head", "output_gate": True},
        linear_attention=_deltanet(hf, act) if "linear" in types else None,
        moe=gated_shared_moe(hf, act, bool(hf["norm_topk_prob"])) if "moe" in ffn_types else None,
    )


# ---- the DeltaNet's in-projections: HF's per-key-head grouping <-> our plain layout ----------

def _qkvz_sizes(cfg: ModelConfig) -> tuple[int, list[int]]:
    g = cfg.linear_attention
    r = g.n_v_heads // g.n_k_heads
    return g.n_k_heads, [g.k_head_dim, g.k_head_dim, r * g.v_head_dim, r * g.v_head_dim]


def _ba_sizes(cfg: ModelConfig) -> tuple[int, list[int]]:
    g = cfg.linear_attention
    r = g.n_v_heads // g.n_k_heads
    return g.n_k_heads, [r, r]


def _ungroup(sizes):
    """Rows [part_0 of group 0 | part_1 of group 0 | ... | part_0 of group 1 | ...] (HF) ->
    [part_0 of every group | part_1 of every group | ...] (ours)."""
    def f(ts: Tensors, cfg: ModelConfig) -> Tensors:
        n_groups, parts = sizes(cfg)
        w = ts[0]
        per_group = w.reshape(n_groups, sum(parts), -1).split(parts, dim=1)  # each (groups, part, D)
        return [torch.cat([p.reshape(-1, w.shape[-1]) for p in per_group], dim=0)]
    return f


def _regroup(sizes):
    """The inverse of _ungroup."""
    def f(ts: Tensors, cfg: ModelConfig) -> Tensors:
        n_groups, parts = sizes(cfg)
        w = ts[0]
        blocks = w.split([n_groups * p for p in parts], dim=0)  # each (groups * part, D)
        grouped = torch.cat([b.reshape(n_groups, p, -1) for b, p in zip(blocks, parts)], dim=1)
        return [grouped.reshape(w.shape)]
    return f


def _conv_load(ts: Tensors, cfg: ModelConfig) -> Tensors:
    return [ts[0].squeeze(1)]  # (C, 1, K) -> (C, K)


def _conv_save(ts: Tensors, cfg: ModelConfig) -> Tensors:
    return [ts[0].unsqueeze(1)]


def _qwen3_next_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    p = "model.layers.{i}."
    rules = decoder_rules(PRE_NORMS, attn=[])
    # Both mixers are `attn` in our tree and both have a `wo`, so their rules are per layer.
    for i, kind in enumerate(s.kind for s in cfg.layers):
        ours, theirs = f"layers.{i}.attn.", f"model.layers.{i}."
        if kind == "linear":
            la = theirs + "linear_attn."
            rules += [
                rename(ours + "wqkvz.weight", la + "in_proj_qkvz.weight", _ungroup(_qkvz_sizes), _regroup(_qkvz_sizes)),
                rename(ours + "wba.weight", la + "in_proj_ba.weight", _ungroup(_ba_sizes), _regroup(_ba_sizes)),
                rename(ours + "conv", la + "conv1d.weight", _conv_load, _conv_save),
                rename(ours + "dt_bias", la + "dt_bias"),
                rename(ours + "A_log", la + "A_log"),
                rename(ours + "norm.weight", la + "norm.weight"),
                rename(ours + "wo.weight", la + "out_proj.weight"),
            ]
        else:
            rules += [rename(ours + o, theirs + "self_attn." + t) for o, t in ATTN]
    rules.append(rename("layers.{i}.ffn.shared_gate.weight", p + "mlp.shared_expert_gate.weight"))
    return rules + shared_expert_rules(p + "mlp.shared_expert.") + expert_rules()


register(HFFamily(
    ("qwen3_next",), _qwen3_next_config, _qwen3_next_rules,
    # the multi-token-prediction layer the hub checkpoints carry (HF skips it too: _keys_to_ignore_on_load_unexpected)
    ignore=IGNORE + (r"^mtp\.",), extra_ignore=unused_shared_gate, empty_tensors=no_gated_shared_expert,
))
