"""What every layer of one forward pass shares: positions, RoPE tables, masks."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import RopeConfig


@dataclass
class Context:
    positions: torch.Tensor  # (B, T) absolute position of each token being processed
    rope: dict[RopeConfig, tuple[torch.Tensor, torch.Tensor]]  # cos, sin (B, T, rot) per RoPE variant
    _masks: dict = field(default_factory=dict)

    def mask(self, window: int | None) -> torch.Tensor | None:
        """Boolean (B, 1, T, T) mask over the tokens of this pass, or None for plain causal
        (which attention turns into SDPA's is_causal fast path)."""
        if window is None:
            return None
        if window not in self._masks:
            q = self.positions[:, :, None]  # (B, T, 1)
            k = self.positions[:, None, :]  # (B, 1, T)
            self._masks[window] = ((k <= q) & (q - k < window))[:, None]
        return self._masks[window]
