"""Transformer blocks: one small class per residual layout, over shared parts.

A block gets its mixer and FFN from the kinds' registries (parts/) by its LayerSpec, so a new
attention or FFN kind needs nothing here. Norm names say where each norm sits:
`attn_norm`/`ffn_norm` before a sublayer, `attn_post_norm`/`ffn_post_norm` after it."""

from __future__ import annotations

import torch
from torch import nn

from ..model_config import LayerSpec, ModelConfig
from ..parts import FFNS, MIXERS
from .context import Context
from .norm import make_norm


def make_mixer(cfg: ModelConfig, spec: LayerSpec) -> nn.Module:
    # each kind names its module (parts/): a new kind needs no entry here
    return MIXERS[spec.mixer].module_class()(cfg, spec)


def make_ffn(cfg: ModelConfig, spec: LayerSpec) -> nn.Module:
    return FFNS[spec.ffn].build(cfg)


class _Block(nn.Module):
    def __init__(self, cfg: ModelConfig, spec: LayerSpec, norms: tuple[str, ...]):
        super().__init__()
        for name in norms:
            setattr(self, name, make_norm(cfg.norm, cfg.d_model))
        self.attn = make_mixer(cfg, spec)
        self.ffn = make_ffn(cfg, spec)


class PreNormBlock(_Block):
    """GPT-2, LLaMA, Qwen, DeepSeek: normalise each sublayer's input.

    x ─┬─ attn_norm ─ attn ─(+)─┬─ ffn_norm ─ ffn ─(+)─>
       └────────────────────────┘└──────────────────┘
    """

    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__(cfg, spec, ("attn_norm", "ffn_norm"))

    def forward(self, x: torch.Tensor, ctx: Context, cache=None) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), ctx, cache)
        return x + self.ffn(self.ffn_norm(x))


class PostNormBlock(_Block):
    """GPT-1 and the original Transformer: normalise after each residual addition (so the
    residual stream itself is normalised, and the model needs no final norm).

    x ─┬─ attn ─(+)─ attn_norm ─┬─ ffn ─(+)─ ffn_norm ─>
       └────────┘               └───────┘
    """

    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__(cfg, spec, ("attn_norm", "ffn_norm"))

    def forward(self, x: torch.Tensor, ctx: Context, cache=None) -> torch.Tensor:
        x = self.attn_norm(x + self.attn(x, ctx, cache))
        return self.ffn_norm(x + self.ffn(x))


class SandwichBlock(_Block):
    """Gemma 2/3, Grok: normalise each sublayer's input and its output.

    x ─┬─ attn_norm ─ attn ─ attn_post_norm ─(+)─┬─ ffn_norm ─ ffn ─ ffn_post_norm ─(+)─>
       └─────────────────────────────────────────┘└──────────────────────────────────┘
    """

    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__(cfg, spec, ("attn_norm", "attn_post_norm", "ffn_norm", "ffn_post_norm"))

    def forward(self, x: torch.Tensor, ctx: Context, cache=None) -> torch.Tensor:
        x = x + self.attn_post_norm(self.attn(self.attn_norm(x), ctx, cache))
        return x + self.ffn_post_norm(self.ffn(self.ffn_norm(x)))


class OutputNormBlock(_Block):
    """OLMo 2: normalise each sublayer's output inside the residual branch; the sublayers see
    the raw residual stream.

    x ─┬─ attn ─ attn_post_norm ─(+)─┬─ ffn ─ ffn_post_norm ─(+)─>
       └─────────────────────────────┘└───────────────────────┘
    """

    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__(cfg, spec, ("attn_post_norm", "ffn_post_norm"))

    def forward(self, x: torch.Tensor, ctx: Context, cache=None) -> torch.Tensor:
        x = x + self.attn_post_norm(self.attn(x, ctx, cache))
        return x + self.ffn_post_norm(self.ffn(x))


class ParallelBlock(_Block):
    """GPT-J, GPT-NeoX, PaLM: attention and FFN both read the same residual stream and their
    outputs are added together (one sequential dependency fewer per layer).

    x ─┬─ attn_norm ─ attn ─(+)─>
       ├─ ffn_norm ── ffn ───┤
       └─────────────────────┘
    """

    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__(cfg, spec, ("attn_norm", "ffn_norm"))

    def forward(self, x: torch.Tensor, ctx: Context, cache=None) -> torch.Tensor:
        return x + self.attn(self.attn_norm(x), ctx, cache) + self.ffn(self.ffn_norm(x))


class NormedResidualBlock(_Block):
    """BLOOM with apply_residual_connection_post_layernorm (modeling_bloom.py, BloomBlock):
    as pre-norm, but the residual each sublayer adds to is its normalised input, so the raw
    stream does not pass through.

    x ─ attn_norm ─┬─ attn ─(+)─ ffn_norm ─┬─ ffn ─(+)─>
                   └────────┘              └───────┘
    """

    def __init__(self, cfg: ModelConfig, spec: LayerSpec):
        super().__init__(cfg, spec, ("attn_norm", "ffn_norm"))

    def forward(self, x: torch.Tensor, ctx: Context, cache=None) -> torch.Tensor:
        x = self.attn_norm(x)
        x = x + self.attn(x, ctx, cache)
        x = self.ffn_norm(x)
        return x + self.ffn(x)


BLOCKS: dict[str, type[nn.Module]] = {
    "pre": PreNormBlock,
    "post": PostNormBlock,
    "sandwich": SandwichBlock,
    "output": OutputNormBlock,
    "parallel": ParallelBlock,
    "normed_residual": NormedResidualBlock,
}
