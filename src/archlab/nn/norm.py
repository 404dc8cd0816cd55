"""Normalisation layers, chosen by `NormConfig.kind` from a small registry."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model_config import NormConfig


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
    Normalises in float32 and scales in the input dtype, as Llama's reference does.

    unit_offset: scale by (1 + w) with w starting at 0, computed in float32 before the cast
    back, as Gemma's and Qwen3-Next's references do (the "zero-centred" weight decays to
    the identity rather than to zero)."""

    def __init__(self, dim: int, cfg: NormConfig):
        super().__init__()
        self.eps = cfg.eps
        self.unit_offset = cfg.unit_offset
        self.weight = nn.Parameter(torch.empty(dim))

    def reset_parameters(self) -> None:
        (nn.init.zeros_ if self.unit_offset else nn.init.ones_)(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = F.rms_norm(x.float(), self.weight.shape, eps=self.eps)
        if self.unit_offset:
            return (normed * (1.0 + self.weight.float())).to(x.dtype)
        return self.weight * normed.to(x.dtype)


class L2Norm(nn.Module):
    """x / rms(x) with no learned scale (Llama 4's QK-norm)."""

    def __init__(self, dim: int, cfg: NormConfig):
        super().__init__()
        self.eps = cfg.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).to(x.dtype)


NORMS: dict[str, type[nn.Module]] = {"layernorm": LayerNorm, "rmsnorm": RMSNorm, "l2norm": L2Norm}


def make_norm(cfg: NormConfig, dim: int) -> nn.Module:
    return NORMS[cfg.kind](dim, cfg)
