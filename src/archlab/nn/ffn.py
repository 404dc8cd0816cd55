"""Dense feed-forward layers: the GELU MLP of GPT-2 and the gated GLU family (SwiGLU, GeGLU)."""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..model_config import FFNConfig
from .fused import linears_on

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_tanh": partial(F.gelu, approximate="tanh"),
    "silu": F.silu,
    "relu": F.relu,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "tanh": torch.tanh,
}


class MLP(nn.Module):
    """down(act(up(x)))"""

    residual_writers = ("down.weight",)

    def __init__(self, d_model: int, cfg: FFNConfig):
        super().__init__()
        self.act = ACTIVATIONS[cfg.activation]
        self.up = nn.Linear(d_model, cfg.hidden, bias=cfg.bias)
        self.down = nn.Linear(cfg.hidden, d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))


class GLU(nn.Module):
    """down(act(gate(x)) * up(x)): SwiGLU with silu, GeGLU with gelu."""

    residual_writers = ("down.weight",)

    def __init__(self, d_model: int, cfg: FFNConfig):
        super().__init__()
        self.act = ACTIVATIONS[cfg.activation]
        self.gate = nn.Linear(d_model, cfg.hidden, bias=cfg.bias)
        self.up = nn.Linear(d_model, cfg.hidden, bias=cfg.bias)
        self.down = nn.Linear(cfg.hidden, d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = linears_on(x, (self.gate, self.up))
        return self.down(self.act(gate) * up)


FFNS: dict[str, type[nn.Module]] = {"mlp": MLP, "glu": GLU}
