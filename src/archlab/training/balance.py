"""Keeping a mixture of experts balanced while it trains.

Two ways, as the papers do it:
  aux        an auxiliary loss added to the language-modelling loss (Switch Transformer,
             Mixtral, Qwen MoE, GPT-OSS, Llama 4 ...): nn/moe.py `balance_loss`, averaged over
             the MoE layers and weighed by --aux-coef.
  loss-free  DeepSeek-V3's auxiliary-loss-free balancing (Wang et al. 2024, "Auxiliary-Loss-Free
             Load Balancing Strategy for Mixture-of-Experts"; DeepSeek-V3 report section 2.1.2):
             each expert's selection-only bias moves by bias_rate * sign(mean load - its load)
             once per optimizer step, so overloaded experts are picked less, without any
             gradient that competes with the language-modelling loss. (DeepSeek-V3 also adds a
             tiny sequence-wise auxiliary loss, alpha = 0.0001; that is left out here.)
"""

from __future__ import annotations

import dataclasses

import torch

from ..model_config import ModelConfig
from ..nn.moe import Router


def resolve_balancing(choice: str, config: ModelConfig) -> str:
    """"none", "aux" or "loss-free" for this model: "auto" follows the preset's paper."""
    if config.moe is None or not any(s.ffn == "moe" for s in config.layers):
        return "none"  # (a MoE config cut to its dense first layers has no router to balance)
    if choice == "auto":
        return "loss-free" if config.moe.router.score_bias else "aux"
    return choice


def with_selection_bias(config: ModelConfig) -> ModelConfig:
    """The config with a selection-only router bias (what loss-free balancing adjusts)."""
    moe = config.moe
    router = dataclasses.replace(moe.router, score_bias=True)
    return config.replace(moe=dataclasses.replace(moe, router=router))


class Balancer:
    """Applies one balancing method to a model's routers, step by step."""

    def __init__(self, model: torch.nn.Module, method: str, aux_coef: float, bias_rate: float):
        self.method = method
        self.aux_coef, self.bias_rate = aux_coef, bias_rate
        self.routers = [m for m in model.modules() if isinstance(m, Router)]
        for r in self.routers:
            r.track_balance = method == "aux"
            if method == "loss-free" and r.score_bias is None:
                raise ValueError("loss-free balancing needs a router with a selection-only bias (RouterConfig.score_bias)")

    def aux_loss(self) -> torch.Tensor | None:
        """The weighted auxiliary loss of the last forward (None when not balancing by loss)."""
        if self.method != "aux" or not self.routers:
            return None
        losses = [r.balance_loss for r in self.routers if r.balance_loss is not None]
        if not losses:
            return None
        for r in self.routers:
            r.balance_loss = None  # each forward's loss is added once
        return self.aux_coef * torch.stack(losses).mean()

    @torch.no_grad()
    def after_step(self, load_LE: torch.Tensor) -> None:
        """Nudge the selection biases by the load of the step just taken: load_LE (MoE layers,
        experts) tokens routed, summed over every process (the same on each, so every copy of
        the biases moves alike)."""
        if self.method != "loss-free":
            return
        for router, load_E in zip(self.routers, load_LE.float()):
            error_E = load_E.mean() - load_E  # > 0: underloaded, so raise its bias
            router.score_bias += self.bias_rate * error_E.sign().to(router.score_bias.device)


def imbalance(load_LE: torch.Tensor) -> list[float]:
    """Per MoE layer, the busiest expert's load over the mean load (1.0 is perfectly even)."""
    load = load_LE.float()
    mean = load.mean(dim=-1).clamp(min=1e-9)
    return [round(v, 4) for v in (load.max(dim=-1).values / mean).tolist()]
