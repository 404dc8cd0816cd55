"""What every layer of one forward pass shares: positions, RoPE tables, attention masks."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..model_config import RopeConfig


@dataclass
class Context:
    """Tokens of this pass sit at slots [start, start + T). `pad` (B,) counts each row's
    left padding, whose slots no query may attend to; None means no padding."""

    positions: torch.Tensor  # (B, T) RoPE / learned position of each token: slot - pad
    rope: dict[RopeConfig, tuple[torch.Tensor, torch.Tensor]]  # cos, sin (B, T, rot) per RoPE variant
    start: int | torch.Tensor = 0  # a 0-dim tensor in a static decode step (cache.py)
    pad: torch.Tensor | None = None
    _masks: dict = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return self.positions.shape[1]

    @property
    def static(self) -> bool:
        """A static decode step: start is a tensor and caches return their whole buffers."""
        return isinstance(self.start, torch.Tensor)

    def query_slots(self) -> torch.Tensor:
        """(T,) the slot of each token of this pass (start may be an int or a 0-dim tensor)."""
        return self.start + torch.arange(self.n_tokens, device=self.positions.device)

    def attn_mask(
        self, window: int | None = None, key_slots: torch.Tensor | None = None, chunk: int | None = None
    ) -> tuple[torch.Tensor | None, bool]:
        """(mask, is_causal) for attention from this pass's queries to keys at `key_slots`
        (None: slots 0..start+T-1 in order, as a full cache or no cache holds them).
        window: a query sees the last `window` tokens, itself included. chunk: a query sees
        only the earlier tokens of its own block of `chunk` positions.
        mask is boolean (B or 1, 1, T, S), True where attention is allowed, or None when
        SDPA's built-in causal flag (or no mask at all, for one query) says the same."""
        T = self.n_tokens
        S = self.start + T if key_slots is None else key_slots.shape[0]
        limit = window or chunk
        binds = limit is not None and (key_slots is not None or S > limit)
        if self.pad is None and not binds and key_slots is None:
            if self.start == 0:
                return None, T > 1
            if T == 1:
                return None, False
        key = (window, chunk, S, key_slots is None)
        if key not in self._masks:
            device = self.positions.device
            q = self.query_slots()[:, None]  # (T, 1)
            k = (torch.arange(S, device=device) if key_slots is None else key_slots)[None, :]  # (1, S)
            allowed = (k >= 0) & (k <= q)
            if window is not None:
                allowed &= q - k < window
            allowed = allowed[None]  # (1, T, S)
            if chunk is not None:
                # blocks are counted in positions, which start after each row's padding
                pad = self.pad[:, None, None] if self.pad is not None else 0
                allowed = allowed & (torch.div(q[None] - pad, chunk, rounding_mode="floor") == torch.div(k[None] - pad, chunk, rounding_mode="floor"))
            if self.pad is not None:
                allowed = allowed & (k[None] >= self.pad[:, None, None])  # (B, T, S)
                # a padding query would see no key at all (NaN in softmax): let it see itself
                allowed = allowed | (k == q)[None]
            self._masks[key] = allowed[:, None]
        return self._masks[key], False

    def relative_distance(self, key_slots: torch.Tensor | None = None) -> torch.Tensor:
        """(T, S) query slot minus key slot: what ALiBi penalises (slots and positions differ
        by each row's padding, a constant that cancels)."""
        T = self.n_tokens
        device = self.positions.device
        q = self.query_slots()[:, None]
        k = torch.arange(self.start + T, device=device)[None, :] if key_slots is None else key_slots[None, :]
        return (q - k).clamp(min=0)
