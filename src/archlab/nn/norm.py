"""Normalisation layers, chosen by `NormConfig.kind` from a small registry."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import NormConfig


class LayerNorm(nn.Module):
    """(x - mean) / std * w + b, as in GPT-2."""

    def __init__(self, dim: int, cfg: NormConfig):
        super().__init__()
        self.eps = cfg.eps
        self.weight = nn.Parameter(torch.empty(dim))
        self.bias = nn.Parameter(torch.empty(dim)) if cfg.bias else None

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """x / rms(x) * w: LayerNorm without the centring or the bias (LLaMA onwards).
    Normalises in float32 and scales in the input dtype, as Llama's reference does."""

    def __init__(self, dim: int, cfg: NormConfig):
        super().__init__()
        self.eps = cfg.eps
        self.weight = nn.Parameter(torch.empty(dim))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * F.rms_norm(x.float(), self.weight.shape, eps=self.eps).to(x.dtype)


NORMS: dict[str, type[nn.Module]] = {"layernorm": LayerNorm, "rmsnorm": RMSNorm}


def make_norm(cfg: NormConfig, dim: int) -> nn.Module:
    return NORMS[cfg.kind](dim, cfg)
