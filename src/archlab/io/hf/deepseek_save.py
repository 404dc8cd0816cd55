"""Saving as HF `deepseek_v2` / `deepseek_v3`: what a config needs to be one exactly, its
config.json, and the state our model lacks (a sigmoid router's zero selection bias). Reading
them, and the tensor names both ways, are deepseek.py's."""

from __future__ import annotations

from typing import Any

import torch

from ...model_config import ModelConfig
from .core import HF_ACTIVATION, common_problems
from .rope import rope_json


def _first_moe(cfg: ModelConfig) -> int:
    """first_k_dense_replace: the index of the first MoE layer (n_layers when there is none)."""
    return next((s.index for s in cfg.layers if s.ffn == "moe"), cfg.n_layers)


def deepseek_problems(cfg: ModelConfig, v3: bool) -> list[str]:
    p = common_problems(cfg)
    f, m = cfg.resolved_ffn, cfg.moe
    if cfg.norm.kind != "rmsnorm":
        p.append(f"norm.kind={cfg.norm.kind!r} (DeepSeek uses RMSNorm)")
    if cfg.resolved_attention.latent_norm_eps != 1e-6:
        p.append(f"attention.latent_norm_eps={cfg.resolved_attention.latent_norm_eps} (HF's DeepSeek fixes the latent norms' eps at 1e-6)")
    if f is not None and f.kind != "glu":
        p.append(f"ffn kind={f.kind!r} (DeepSeek's dense FFN is a GLU)")
    if _mlp_bias(cfg) is None:
        p.append(f"ffn.bias={f.bias if f else None} moe.shared_bias={m.shared_bias if m else None} moe.n_shared="
                 f"{m.n_shared if m else None} (DeepSeek-V2's one mlp_bias biases the dense FFN and a shared expert alike)")
    elif _mlp_bias(cfg) and v3:
        p.append("ffn.bias / moe.shared_bias (deepseek_v3's MLPs have no biases; deepseek_v2's mlp_bias has them)")
    if not v3 and cfg.d_model % cfg.resolved_attention.n_heads:
        p.append(f"d_model={cfg.d_model} with n_heads={cfg.resolved_attention.n_heads} "
                 "(HF's DeepseekV2Config requires hidden_size divisible by the heads)")
    if m is None:
        return p
    if f is not None and m.activation != f.activation:
        p.append(f"moe.activation={m.activation!r} differs from ffn.activation={f.activation!r} (DeepSeek has one hidden_act)")
    kinds, k = [s.ffn for s in cfg.layers], _first_moe(cfg)
    if kinds != ["dense"] * k + ["moe"] * (cfg.n_layers - k):
        p.append(f"ffn_types={kinds} (DeepSeek's MoE layers are all layers from first_k_dense_replace on)")
    if m.shared_hidden is not None:
        p.append(f"moe.shared_hidden={m.shared_hidden} (DeepSeek's shared experts are n_shared_experts x moe_intermediate_size wide)")
    r = m.router
    if r.n_groups > 1 and m.top_k > r.topk_groups * (m.n_experts // r.n_groups):
        # top-k reaches into the dropped groups: V3 excludes them, V2 zeroes them (RouterConfig.dropped_groups)
        want = "excluded" if v3 else "zeroed"
        if r.dropped_groups != want:
            p.append(f"moe.router.dropped_groups={r.dropped_groups!r} with top_k={m.top_k} beyond the kept groups' experts "
                     f"(deepseek_v{3 if v3 else 2} treats the dropped groups as {want!r})")
    if v3:
        if r.score != "sigmoid":
            p.append(f"moe.router.score={r.score!r} (deepseek_v3 scores experts with sigmoids)")
        if r.n_groups > 1 and r.group_score != "top2_sum":
            p.append(f"moe.router.group_score={r.group_score!r} (deepseek_v3 ranks groups by their two best experts: 'top2_sum')")
        if m.n_experts // r.n_groups < 2:
            p.append(f"{m.n_experts} experts in {r.n_groups} groups (deepseek_v3 ranks groups by their two best experts, so needs 2 per group)")
    else:
        if r.score != "softmax":
            p.append(f"moe.router.score={r.score!r} (deepseek_v2 scores experts with a softmax)")
        if r.score_bias:
            p.append("moe.router.score_bias (deepseek_v2 has no selection bias)")
        if r.norm_topk:
            p.append("moe.router.norm_topk=True (HF's deepseek_v2 ignores norm_topk_prob and never renormalises)")
        if r.n_groups > 1 and r.group_score != "max":
            p.append(f"moe.router.group_score={r.group_score!r} (deepseek_v2 ranks groups by their best expert: 'max')")
    return p


def _mlp_bias(cfg: ModelConfig) -> bool | None:
    """config.json's mlp_bias for `cfg`'s dense FFN and shared expert, None where no value says
    both (HF's DeepseekV2MLP reads the one flag for both; with no shared expert its zero-width
    one would still add a down_proj bias)."""
    f, m = cfg.resolved_ffn, cfg.moe
    said = {f.bias} if f is not None else set()
    if m is not None:
        said.add(m.shared_bias)
        if not m.n_shared and True in said:
            return None
    return None if len(said) > 1 else bool(said and said.pop())


def deepseek_json(cfg: ModelConfig, v3: bool) -> dict[str, Any]:
    a, m = cfg.resolved_attention, cfg.moe
    hf: dict[str, Any] = {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        # required even when no layer is dense (then unused: the experts' width stands in)
        "intermediate_size": (cfg.resolved_ffn or cfg.moe).hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": a.n_heads,
        # MLA shares one latent between all heads; HF's attention code wants the count of K/V heads it rebuilds
        "num_key_value_heads": a.n_heads,
        "q_lora_rank": a.q_lora_rank,
        "kv_lora_rank": a.kv_lora_rank,
        "qk_nope_head_dim": a.qk_nope_head_dim,
        "qk_rope_head_dim": a.qk_rope_head_dim,
        "v_head_dim": a.v_head_dim,
        "hidden_act": HF_ACTIVATION[(cfg.resolved_ffn or cfg.moe).activation],
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm.eps,
        **rope_json(cfg),
        "attention_bias": a.bias,
        "mlp_bias": bool(_mlp_bias(cfg)),
        "attention_dropout": 0.0,
    }
    if v3:
        # our weights are rotate-half; the save rules permute them back to DeepSeek's adjacent pairs
        hf.update(rope_interleave=True, num_nextn_predict_layers=0)
    if m is None:
        # no MoE layer at all: every layer is one of the first_k_dense_replace dense ones
        hf.update(n_routed_experts=0, n_shared_experts=0, n_group=1, topk_group=1, first_k_dense_replace=cfg.n_layers)
        return hf
    r = m.router
    hf.update(
        n_routed_experts=m.n_experts,
        num_experts_per_tok=m.top_k,
        moe_intermediate_size=m.hidden,
        n_shared_experts=m.n_shared,
        routed_scaling_factor=r.scale,
        norm_topk_prob=r.norm_topk,
        scoring_func=r.score,
        topk_method="noaux_tc" if v3 else "group_limited_greedy" if r.n_groups > 1 else "greedy",
        n_group=r.n_groups,
        topk_group=r.topk_groups,
        first_k_dense_replace=_first_moe(cfg),
        moe_layer_freq=1,
    )
    return hf


def empty_shared_expert(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """With n_shared_experts=0, HF's DeepseekV2/V3Moe still holds a shared expert of width 0:
    its (0, D) and (D, 0) weights are written, so that HF finds every tensor it expects."""
    if cfg.moe is None or cfg.moe.n_shared:
        return state
    out = {}
    for k, v in state.items():
        out[k] = v
        if k.endswith(".ffn.router.weight"):
            shared, D = k.removesuffix("router.weight") + "shared.", v.shape[1]
            out.update({shared + "gate.weight": v.new_zeros(0, D), shared + "up.weight": v.new_zeros(0, D),
                        shared + "down.weight": v.new_zeros(D, 0)})
    return out


def zero_score_bias(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """deepseek_v3's router always has a selection bias; a sigmoid router without one is
    the same router with a zero bias. (And the empty shared expert, as for V2.)"""
    state = empty_shared_expert(state, cfg)
    if cfg.moe is None or cfg.moe.router.score_bias:
        return state
    out = {}
    for k, v in state.items():
        out[k] = v
        if k.endswith(".ffn.router.weight"):
            out[k.removesuffix("weight") + "score_bias"] = torch.zeros(v.shape[0], dtype=v.dtype)
    return out
