"""HF `deepseek_v2` and `deepseek_v3`: MLA with adjacent-pair RoPE rows, per-expert tensors."""

from __future__ import annotations

from typing import Any, Callable

import torch

from ...config import ConfigError, FFNConfig, MLAConfig, ModelConfig, MoEConfig, NormConfig, RouterConfig
from ...nn.position import interleaved_to_halves
from ..mapping import Rule, Tensors, rename, same
from .core import (
    HF_ACTIVATION,
    CheckpointError,
    HFFamily,
    activation,
    common_problems,
    get_field,
    read_rope,
    register,
    rope_json,
)
from .llama_like import PRE_NORMS, decoder_rules, expert_rules


def _deepseek_config(hf: dict, v3: bool) -> ModelConfig:
    if hf.get("mlp_bias"):
        raise CheckpointError("config.json: mlp_bias=true is not supported for DeepSeek")
    n_layers = get_field(hf, "num_hidden_layers")
    n_experts = hf.get("n_routed_experts")
    moe = None
    ffn_types = None
    if n_experts:
        if v3:
            router = RouterConfig(
                score="sigmoid",
                norm_topk=bool(hf.get("norm_topk_prob", True)),
                scale=float(hf.get("routed_scaling_factor", 1.0)),
                n_groups=int(hf.get("n_group") or 1),
                topk_groups=int(hf.get("topk_group") or 1),
                group_score="top2_sum",
                score_bias=True,
            )
        else:
            method = hf.get("topk_method", "greedy")
            if method not in ("greedy", "group_limited_greedy"):
                raise CheckpointError(f"config.json: topk_method={method!r} is not supported for deepseek_v2")
            grouped = method == "group_limited_greedy"
            router = RouterConfig(
                score="softmax",
                # DeepSeek-V2's own code honours norm_topk_prob (HF's port ignores it; both
                # published V2 configs set it false, where the two agree).
                norm_topk=bool(hf.get("norm_topk_prob", False)),
                scale=float(hf.get("routed_scaling_factor", 1.0)),
                n_groups=int(hf.get("n_group") or 1) if grouped else 1,
                topk_groups=int(hf.get("topk_group") or 1) if grouped else 1,
                group_score="max",
            )
        try:
            moe = MoEConfig(
                n_experts=int(n_experts),
                top_k=get_field(hf, "num_experts_per_tok"),
                hidden=get_field(hf, "moe_intermediate_size"),
                n_shared=int(hf.get("n_shared_experts") or 0),
                activation=activation(hf, "hidden_act"),
                router=router,
            )
        except ConfigError as e:
            raise CheckpointError(f"config.json: {e}") from None
        first_dense = int(hf.get("first_k_dense_replace", 0))
        freq = int(hf.get("moe_layer_freq", 1) or 1)
        ffn_types = tuple("moe" if i >= first_dense and i % freq == 0 else "dense" for i in range(n_layers))
    bias = bool(hf.get("attention_bias", False))
    return ModelConfig(
        name=str(hf.get("model_type")),
        family="deepseek",
        vocab_size=get_field(hf, "vocab_size"),
        d_model=get_field(hf, "hidden_size"),
        n_layers=n_layers,
        max_seq_len=get_field(hf, "max_position_embeddings"),
        norm=NormConfig("rmsnorm", eps=get_field(hf, "rms_norm_eps", 1e-6)),
        rope=read_rope(hf),
        attention=MLAConfig(
            n_heads=get_field(hf, "num_attention_heads"),
            q_lora_rank=hf.get("q_lora_rank"),
            kv_lora_rank=get_field(hf, "kv_lora_rank"),
            qk_nope_head_dim=get_field(hf, "qk_nope_head_dim"),
            qk_rope_head_dim=get_field(hf, "qk_rope_head_dim"),
            v_head_dim=get_field(hf, "v_head_dim"),
            bias=bias,
        ),
        ffn=FFNConfig(hidden=get_field(hf, "intermediate_size"), kind="glu", activation=activation(hf, "hidden_act")),
        moe=moe,
        ffn_types=ffn_types,
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
    )


def _deepseek_problems(cfg: ModelConfig, v3: bool) -> list[str]:
    p = common_problems(cfg)
    f, m = cfg.ffn, cfg.moe
    if cfg.norm.kind != "rmsnorm":
        p.append(f"norm.kind={cfg.norm.kind!r} (DeepSeek uses RMSNorm)")
    if f.kind != "glu" or f.bias:
        p.append(f"ffn kind={f.kind!r} bias={f.bias} (DeepSeek's dense FFN is a GLU without biases)")
    if not v3 and cfg.d_model % cfg.attention.n_heads:
        p.append(f"d_model={cfg.d_model} with n_heads={cfg.attention.n_heads} "
                 "(HF's DeepseekV2Config requires hidden_size divisible by the heads)")
    if m is None:
        return p
    if m.activation != f.activation:
        p.append(f"moe.activation={m.activation!r} differs from ffn.activation={f.activation!r} (DeepSeek has one hidden_act)")
    k = cfg.ffn_types.index("moe") if "moe" in cfg.ffn_types else cfg.n_layers
    if cfg.ffn_types != ("dense",) * k + ("moe",) * (cfg.n_layers - k):
        p.append(f"ffn_types={list(cfg.ffn_types)} (DeepSeek's MoE layers are all layers from first_k_dense_replace on)")
    r = m.router
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


def _deepseek_json(cfg: ModelConfig, v3: bool) -> dict[str, Any]:
    a, m = cfg.attention, cfg.moe
    hf: dict[str, Any] = {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.ffn.hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": a.n_heads,
        # MLA shares one latent between all heads; HF's attention code wants the count of K/V heads it rebuilds
        "num_key_value_heads": a.n_heads,
        "q_lora_rank": a.q_lora_rank,
        "kv_lora_rank": a.kv_lora_rank,
        "qk_nope_head_dim": a.qk_nope_head_dim,
        "qk_rope_head_dim": a.qk_rope_head_dim,
        "v_head_dim": a.v_head_dim,
        "hidden_act": HF_ACTIVATION[cfg.ffn.activation],
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm.eps,
        **rope_json(cfg),
        "attention_bias": a.bias,
        "mlp_bias": False,
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
        first_k_dense_replace=cfg.ffn_types.index("moe") if "moe" in cfg.ffn_types else cfg.n_layers,
        moe_layer_freq=1,
    )
    return hf


def _zero_score_bias(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """deepseek_v3's router always has a selection bias; a sigmoid router without one is
    the same router with a zero bias."""
    if cfg.moe is None or cfg.moe.router.score_bias:
        return state
    out = {}
    for k, v in state.items():
        out[k] = v
        if k.endswith(".ffn.router.weight"):
            out[k.removesuffix("weight") + "score_bias"] = torch.zeros(v.shape[0], dtype=v.dtype)
    return out


def _head_rope_perm(cfg: ModelConfig, inverse: bool) -> Callable[[Tensors, ModelConfig], Tensors]:
    """Permute the RoPE rows of each head of a query projection between adjacent-pair and
    rotate-half layout (rows per head: qk_nope_head_dim, then qk_rope_head_dim)."""
    a = cfg.attention
    perm = interleaved_to_halves(a.qk_rope_head_dim)
    if inverse:
        perm = perm.argsort()

    def f(ts: Tensors, cfg: ModelConfig) -> Tensors:
        w = ts[0]
        per_head = w.view(a.n_heads, a.qk_head_dim, -1)
        out = torch.cat((per_head[:, : a.qk_nope_head_dim], per_head[:, a.qk_nope_head_dim :][:, perm]), dim=1)
        return [out.reshape(w.shape)]

    return f


def _tail_rope_perm(cfg: ModelConfig, inverse: bool) -> Callable[[Tensors, ModelConfig], Tensors]:
    """Same for the shared RoPE key: the last qk_rope_head_dim rows of wkv_a (and its bias)."""
    a = cfg.attention
    perm = interleaved_to_halves(a.qk_rope_head_dim)
    if inverse:
        perm = perm.argsort()

    def f(ts: Tensors, cfg: ModelConfig) -> Tensors:
        w = ts[0]
        return [torch.cat((w[: a.kv_lora_rank], w[a.kv_lora_rank :][perm]), dim=0)]

    return f


def _deepseek_rules(cfg: ModelConfig, interleaved: bool) -> list[Rule]:
    names = [
        ("wq_a.weight", "q_a_proj.weight"), ("wq_a.bias", "q_a_proj.bias"), ("q_norm.weight", "q_a_layernorm.weight"),
        ("kv_norm.weight", "kv_a_layernorm.weight"), ("wkv_b.weight", "kv_b_proj.weight"),
        ("wo.weight", "o_proj.weight"), ("wo.bias", "o_proj.bias"),
    ]
    rules = decoder_rules(PRE_NORMS, attn=names)
    p = "model.layers.{i}.self_attn."
    # Adjacent-pair RoPE checkpoints are permuted to our rotate-half layout; q·k is unchanged.
    q_load, q_save = (_head_rope_perm(cfg, False), _head_rope_perm(cfg, True)) if interleaved else (same, same)
    kv_load, kv_save = (_tail_rope_perm(cfg, False), _tail_rope_perm(cfg, True)) if interleaved else (same, same)
    rules += [
        rename("layers.{i}.attn.wq.weight", p + "q_proj.weight", q_load, q_save),
        rename("layers.{i}.attn.wq_b.weight", p + "q_b_proj.weight", q_load, q_save),
        rename("layers.{i}.attn.wkv_a.weight", p + "kv_a_proj_with_mqa.weight", kv_load, kv_save),
        rename("layers.{i}.attn.wkv_a.bias", p + "kv_a_proj_with_mqa.bias", kv_load, kv_save),
    ]
    m = "model.layers.{i}.mlp."
    # per-expert tensors as the hub holds them, or fused as HF v5 holds them in memory
    rules += expert_rules(
        router=m + "gate.weight",
        gate=m + "experts.{e}.gate_proj.weight",
        up=m + "experts.{e}.up_proj.weight",
        down=m + "experts.{e}.down_proj.weight",
    )
    rules.append(rename("layers.{i}.ffn.router.score_bias", m + "gate.e_score_correction_bias"))
    for ours, theirs in (("gate", "gate_proj"), ("up", "up_proj"), ("down", "down_proj")):
        rules.append(rename(f"layers.{{i}}.ffn.shared.{ours}.weight", f"{m}shared_experts.{theirs}.weight"))
    return rules



def _mtp_ignore(hf: dict, cfg: ModelConfig) -> list[str]:
    """DeepSeek-V3 checkpoints carry their multi-token-prediction layers after the last one."""
    n = int(hf.get("num_nextn_predict_layers", 0) or 0)
    return [r"^model\.layers\.(%s)\." % "|".join(str(cfg.n_layers + j) for j in range(n))] if n else []


# V3 before V2: an MLA model without experts fits both and is written as the newer one.
# V3's hub weights pair adjacent RoPE dims unless the config says rope_interleave=false.
register(HFFamily(
    # Kimi K2's release says model_type "kimi_k2" for DeepSeek-V3's architecture
    ("deepseek_v3", "kimi_k2"), lambda hf: _deepseek_config(hf, v3=True),
    lambda cfg, hf: _deepseek_rules(cfg, interleaved=hf.get("rope_interleave", True) is not False),
    ignore=(r".*rotary_emb\.inv_freq$",),
    architecture="DeepseekV3ForCausalLM", mixer="mla",
    problems=lambda cfg: _deepseek_problems(cfg, v3=True), write_config=lambda cfg: _deepseek_json(cfg, v3=True),
    prepare_state=_zero_score_bias, extra_ignore=_mtp_ignore,
))
register(HFFamily(
    ("deepseek_v2",), lambda hf: _deepseek_config(hf, v3=False),
    lambda cfg, hf: _deepseek_rules(cfg, interleaved=True), ignore=(r".*rotary_emb\.inv_freq$",),
    architecture="DeepseekV2ForCausalLM", mixer="mla",
    problems=lambda cfg: _deepseek_problems(cfg, v3=False), write_config=lambda cfg: _deepseek_json(cfg, v3=False),
))
