"""Mixture of experts: a router picks top_k of n_experts GLUs per token; shared experts
(DeepSeek) see every token.

Shape suffixes: N tokens, D d_model, E experts, F expert hidden size, K top_k, G groups.
Experts are stored stacked, gate/up as (E, F, D) and down as (E, D, F), so one parameter
holds all experts of a layer (how grouped-GEMM kernels and expert sharding want them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import FFNConfig, MoEConfig
from .ffn import ACTIVATIONS, GLU


class Router(nn.Module):
    """Scores experts and returns each token's top_k expert ids and weights (float32).

    Routing runs in float32 whatever the model dtype, as DeepSeek's reference does: the
    choice of experts is discrete, and low precision would flip near-ties."""

    def __init__(self, d_model: int, cfg: MoEConfig):
        super().__init__()
        self.cfg = cfg.router
        self.n_experts, self.top_k = cfg.n_experts, cfg.top_k
        self.weight = nn.Parameter(torch.empty(cfg.n_experts, d_model))
        # Selection-only bias (DeepSeek-V3): a buffer, learned by a balancing rule, not by gradients.
        self.score_bias = nn.Buffer(torch.empty(cfg.n_experts, dtype=torch.float32)) if cfg.router.score_bias else None

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=0.02)
        if self.score_bias is not None:
            nn.init.zeros_(self.score_bias)

    def forward(self, x_ND: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.cfg
        logits_NE = F.linear(x_ND.float(), self.weight.float())
        scores_NE = logits_NE.softmax(dim=-1) if r.score == "softmax" else logits_NE.sigmoid()
        choice_NE = scores_NE if self.score_bias is None else scores_NE + self.score_bias.float()
        if r.n_groups > 1:
            N, E, G = choice_NE.shape[0], self.n_experts, r.n_groups
            grouped_NGe = choice_NE.view(N, G, E // G)
            if r.group_score == "max":
                group_NG = grouped_NGe.max(dim=-1).values
            else:  # "top2_sum"
                group_NG = grouped_NGe.topk(2, dim=-1).values.sum(dim=-1)
            best_groups = group_NG.topk(r.topk_groups, dim=-1, sorted=False).indices
            keep_NG = torch.zeros_like(group_NG, dtype=torch.bool).scatter_(1, best_groups, True)
            keep_NE = keep_NG.repeat_interleave(E // G, dim=1)
            choice_NE = choice_NE.masked_fill(~keep_NE, float("-inf"))
        idx_NK = choice_NE.topk(self.top_k, dim=-1, sorted=False).indices
        w_NK = scores_NE.gather(1, idx_NK)
        if r.norm_topk:
            w_NK = w_NK / (w_NK.sum(dim=-1, keepdim=True) + 1e-20)
        return w_NK * r.scale, idx_NK


class Experts(nn.Module):
    """n_experts GLUs with stacked weights. Tokens are sorted by expert so each expert runs
    one dense matmul over exactly the tokens routed to it."""

    def __init__(self, d_model: int, cfg: MoEConfig):
        super().__init__()
        E, Fh, D = cfg.n_experts, cfg.hidden, d_model
        self.act = ACTIVATIONS[cfg.activation]
        self.gate = nn.Parameter(torch.empty(E, Fh, D))
        self.up = nn.Parameter(torch.empty(E, Fh, D))
        self.down = nn.Parameter(torch.empty(E, D, Fh))

    def reset_parameters(self) -> None:
        for p in (self.gate, self.up, self.down):
            nn.init.normal_(p, std=0.02)

    def forward(self, x_ND: torch.Tensor, idx_NK: torch.Tensor, w_NK: torch.Tensor) -> torch.Tensor:
        K = idx_NK.shape[1]
        flat = idx_NK.reshape(-1)
        order = flat.argsort(stable=True)  # token-slots grouped by expert
        counts = torch.bincount(flat, minlength=self.gate.shape[0]).tolist()
        token = order // K
        x_sorted = x_ND[token]  # (N*K, D)
        outs = []
        for e, x_e in enumerate(x_sorted.split(counts)):
            if x_e.shape[0] == 0:
                outs.append(x_e)
                continue
            h = self.act(x_e @ self.gate[e].T) * (x_e @ self.up[e].T)  # (n_e, F)
            outs.append(h @ self.down[e].T)  # (n_e, D)
        y_sorted = (torch.cat(outs) * w_NK.reshape(-1)[order, None]).to(x_ND.dtype)
        return torch.zeros_like(x_ND).index_add_(0, token, y_sorted)


class MoE(nn.Module):
    def __init__(self, d_model: int, cfg: MoEConfig):
        super().__init__()
        self.router = Router(d_model, cfg)
        self.experts = Experts(d_model, cfg)
        self.shared = (
            GLU(d_model, FFNConfig(hidden=cfg.hidden * cfg.n_shared, kind="glu", activation=cfg.activation))
            if cfg.n_shared
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x_ND = x.reshape(-1, shape[-1])
        w_NK, idx_NK = self.router(x_ND)
        y_ND = self.experts(x_ND, idx_NK, w_NK)
        if self.shared is not None:
            y_ND = y_ND + self.shared(x_ND)
        return y_ND.view(shape)
