"""Mixture of experts (nn/moe.py): a router picks top_k of n_experts GLUs per token; shared
experts see every token."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..model_config import ModelConfig
from .base import FFNKind, Part, linear


class MixtureOfExperts(FFNKind):
    name = "moe"
    module = "archlab.nn.moe:MoE"

    def params(self, cfg: ModelConfig) -> tuple[int, int]:
        m, d = cfg.moe, cfg.d_model
        always = linear(d, m.n_experts, m.router.logit_bias)  # the router scores every expert
        if m.n_shared:
            always += 2 * linear(d, m.shared_width, m.shared_bias) + linear(m.shared_width, d, m.shared_bias)
            always += d if m.shared_gate else 0
        per_expert = 2 * linear(d, m.hidden, m.bias) + linear(m.hidden, d, m.bias)
        return always + m.n_experts * per_expert, always + m.top_k * per_expert

    def flops(self, cfg: ModelConfig) -> int:
        m, d = cfg.moe, cfg.d_model
        shared = 3 * d * m.shared_width + (d if m.shared_gate else 0)
        return 2 * (d * m.n_experts + shared + m.top_k * 3 * d * m.hidden)

    def describe(self, cfg: ModelConfig) -> Part:
        m = cfg.moe
        r = m.router
        text = f"MoE {m.n_experts} experts of {m.hidden}, top-{m.top_k}"
        if m.n_shared:
            text += f" + {m.n_shared} shared" + (f" of {m.shared_hidden}" if m.shared_hidden else "")
            text += " (gated)" if m.shared_gate else ""
        text += f", {r.score}"
        if r.n_groups > 1:
            text += f", {r.n_groups} groups (top-{r.topk_groups})"
        if m.activation != "silu":
            text += f", {m.activation.split('_')[0].upper()} experts"
        if m.swiglu_limit is not None:
            text += ", clamped SwiGLU"
        data = {
            "n_experts": m.n_experts, "top_k": m.top_k, "hidden": m.hidden, "n_shared": m.n_shared,
            "activation": m.activation, "shared_gate": m.shared_gate, "bias": m.bias, "swiglu_limit": m.swiglu_limit,
            "swiglu_alpha": m.swiglu_alpha, "output_scale": m.output_scale, "shared_hidden": m.shared_hidden,
            "shared_bias": m.shared_bias,
            "router": {k: getattr(r, k) for k in ("score", "norm_topk", "scale", "n_groups", "topk_groups", "group_score",
                                                  "score_bias", "logit_bias", "logit_softcap", "weights_on",
                                                  "dropped_groups")},
        }
        return Part(text, data, f"MoE {m.top_k}/{m.n_experts}" + (f"+{m.n_shared}" if m.n_shared else ""))

    def tiny(self, cfg: ModelConfig, d_model: int) -> dict[str, Any]:
        moe = cfg.moe
        r = moe.router
        top_k = min(moe.top_k, 2)
        n_groups = min(r.n_groups, 4)
        # Enough experts that routing is a real choice: more than top_k, and a multiple of the groups.
        n_experts = max(min(moe.n_experts, 8), top_k + 1)
        per_group = max(-(-n_experts // n_groups), 2 if r.group_score == "top2_sum" and n_groups > 1 else 1)
        n_experts = per_group * n_groups
        topk_groups = min(r.topk_groups, n_groups)
        if n_groups > 1:
            # keep routing group-limited (fewer groups survive than exist) yet able to fill top_k
            topk_groups = max(min(topk_groups, n_groups - 1), -(-top_k // per_group))
        narrow = lambda w: max(8, int(w * d_model / cfg.d_model) // 8 * 8)  # noqa: E731
        return {"moe": replace(
            moe, n_experts=n_experts, top_k=top_k, hidden=narrow(moe.hidden),
            shared_hidden=None if moe.shared_hidden is None else narrow(moe.shared_hidden),
            router=replace(r, n_groups=n_groups, topk_groups=topk_groups),
        )}

    def build(self, cfg: ModelConfig):
        return self.module_class()(cfg.d_model, cfg.moe)


MOE = MixtureOfExperts()
