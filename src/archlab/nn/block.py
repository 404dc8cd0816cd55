"""Transformer blocks: one small class per residual layout, over shared parts.

A block gets its mixer and FFN from the registries by its LayerSpec, so a new attention
or FFN kind is one class plus one registry entry."""

from __future__ import annotations

import torch
from torch import nn

from ..config import LayerSpec, ModelConfig
from .attention import Attention
from .context import Context
from .ffn import FFNS
from .mla import MLA
from .moe import MoE
from .norm import make_norm

MIXERS: dict[str, type[nn.Module]] = {"attention": Attention, "mla": MLA}


def make_mixer(cfg: ModelConfig, spec: LayerSpec) -> nn.Module:
    return MIXERS[spec.mixer](cfg, spec)


def make_ffn(cfg: ModelConfig, spec: LayerSpec) -> nn.Module:
    if spec.ffn == "moe":
        return MoE(cfg.d_model, cfg.moe)
    return FFNS[cfg.ffn.kind](cfg.d_model, cfg.ffn)


class PreNormBlock(nn.Module):
    """GPT-2, LLaMA, Qwen, DeepSeek: normalise each sublayer's input.

    x ─┬─ attn_norm ─ attn ─(+)─┬─ ffn_norm ─ ffn ─(+)─>
       └────────────────────────┘└──────────────────┘
    """

    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__()
        self.attn_norm = make_norm(cfg.norm, cfg.d_model)
        self.attn = make_mixer(cfg, spec)
        self.ffn_norm = make_norm(cfg.norm, cfg.d_model)
        self.ffn = make_ffn(cfg, spec)

    def forward(self, x: torch.Tensor, ctx: Context, cache=None) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), ctx, cache)
        return x + self.ffn(self.ffn_norm(x))


BLOCKS: dict[str, type[nn.Module]] = {"pre": PreNormBlock}
