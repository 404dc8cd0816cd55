"""A model's block diagram, computed once from its config and drawn two ways.

`layout(cfg)` is the diagram as data: a list of `Box`es (input, embedding, the decoder
block's norms, attention and FFN where the residual layout puts them, the final norm, the
head) with their labels and the numbers that matter, plus the per-layer strip. `terminal()`
draws it in box-drawing characters within 100 columns; `svg()` draws the same boxes as a
standalone SVG (no external resources). Config and analysis only: no torch.
"""

from __future__ import annotations

from .model_config import ModelConfig

__all__ = ["svg", "terminal", "layout"]


def svg(cfg: ModelConfig | str) -> str:
    """The block diagram of `cfg` (a ModelConfig or a preset name) as a standalone SVG
    document (a str starting with "<svg", no external resources, every text inside the
    viewBox). Deterministic: the same config gives the same bytes."""
    raise NotImplementedError


def terminal(cfg: ModelConfig | str, width: int = 100) -> str:
    """The block diagram in box-drawing characters, each line at most `width` columns."""
    raise NotImplementedError


def layout(cfg: ModelConfig | str):
    """The diagram as data: a Layout of Boxes, each with a key, a title and its lines."""
    raise NotImplementedError
