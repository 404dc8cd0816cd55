"""The dense feed-forward (nn/ffn.py): a GELU/ReLU MLP, or a GLU (SwiGLU, GeGLU)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..model_config import ModelConfig
from .base import FFNKind, Part, linear

ACT_NAMES = {"gelu": "GELU", "gelu_tanh": "GELU", "silu": "SiLU", "relu": "ReLU", "quick_gelu": "QuickGELU",
             "tanh": "Tanh"}
GLU_NAMES = {"SiLU": "SwiGLU", "GELU": "GeGLU", "ReLU": "ReGLU", "QuickGELU": "QuickGeGLU", "Tanh": "TanhGLU"}


def ratio(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") + "x"


class Dense(FFNKind):
    name = "dense"
    module = "archlab.nn.ffn:FFNS"

    def params(self, cfg: ModelConfig) -> tuple[int, int]:
        f, d = cfg.resolved_ffn, cfg.d_model
        n = (1 if f.kind == "mlp" else 2) * linear(d, f.hidden, f.bias) + linear(f.hidden, d, f.bias)
        return n, n

    def flops(self, cfg: ModelConfig) -> int:
        f = cfg.resolved_ffn
        return 2 * cfg.d_model * f.hidden * (2 if f.kind == "mlp" else 3)

    def describe(self, cfg: ModelConfig) -> Part:
        f = cfg.resolved_ffn
        act = ACT_NAMES[f.activation]
        name = f"{act} MLP" if f.kind == "mlp" else GLU_NAMES[act]
        data = {"kind": f.kind, "activation": f.activation, "hidden": f.hidden, "bias": f.bias}
        return Part(f"{name} {ratio(f.hidden / cfg.d_model)} ({f.hidden})", data, name.split(" ")[0] + (" MLP" if f.kind == "mlp" else ""))

    def tiny(self, cfg: ModelConfig, d_model: int) -> dict[str, Any]:
        f = cfg.ffn
        if f.hidden is None:  # a multiple of d_model (GPT-2's 4x) follows the width by itself
            return {"ffn": f}
        return {"ffn": replace(f, hidden=max(8, int(f.hidden * d_model / cfg.d_model) // 8 * 8))}

    def build(self, cfg: ModelConfig):
        f = cfg.resolved_ffn
        return self.module_class()[f.kind](cfg.d_model, f)


DENSE = Dense()
