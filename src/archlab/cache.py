"""Caches for incremental decoding: one kind per attention kind, each owning its tensors
and reporting their bytes.

All caches are preallocated for a fixed capacity and written at absolute *slots* (the
index of a token in the padded batch, shared by every row), so a decode step never
reallocates. A row that was left-padded by `pad[b]` tokens holds its first real token at
slot pad[b]; its RoPE position is slot - pad[b].

    KVCache         full attention (MHA/GQA/MQA): K and V, (B, n_kv_heads, capacity, head_dim)
    SlidingKVCache  sliding-window attention: a ring buffer of `window` slots, so memory stops
                    growing once the window is full
    MLACache        multi-head latent attention: per token only the kv_lora_rank latent and the
                    shared qk_rope_head_dim RoPE key, (B, capacity, rank + rope_dim); keys and
                    values are never decompressed into the cache
    DeltaNetCache   Gated DeltaNet linear attention: the causal convolution's last kernel - 1
                    inputs and the recurrent state, a fixed size whatever the sequence length

Static decoding (Cache.slot set, see Transformer.decode_step): the slot being written is a
0-dim tensor, not a Python int, and `update` returns the whole buffer with the slot each entry
holds (-1 or a future slot where nothing valid is), so a decode step has the same shapes at
every token and a compiled step is traced once. The mask then hides what is not yet written.
"""

from __future__ import annotations

import torch


class CacheFullError(ValueError):
    pass


class _LayerCache:
    def tensors(self) -> list[torch.Tensor]:
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors())

    def prepare_static(self) -> None:
        """Allocate what static decoding needs beside the buffers (nothing, by default)."""

    def _check_room(self, start: int, n: int, capacity: int) -> None:
        # a tensor start is a static decode step; generate checks the room on the host
        if not isinstance(start, torch.Tensor) and start + n > capacity:
            raise CacheFullError(f"cache holds {capacity} tokens; writing {n} more at {start} would overflow it")


class KVCache(_LayerCache):
    def __init__(self, batch: int, n_kv_heads: int, head_dim: int, capacity: int, dtype: torch.dtype, device, v_head_dim: int | None = None):
        self.capacity = capacity
        self.k = torch.zeros(batch, n_kv_heads, capacity, head_dim, dtype=dtype, device=device)
        self.v = torch.zeros(batch, n_kv_heads, capacity, v_head_dim or head_dim, dtype=dtype, device=device)

    def prepare_static(self) -> None:
        if getattr(self, "slots", None) is None:  # entry i holds slot i
            self.slots = torch.arange(self.capacity, device=self.tensors()[0].device)

    def tensors(self) -> list[torch.Tensor]:
        return [self.k, self.v]

    def update(self, k: torch.Tensor, v: torch.Tensor, start) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Store k, v (B, KV, T, d) at slots [start, start+T); return every key and value so far.
        The third value (None) says the keys are slots 0..start+T-1 in order. With a tensor
        start (static decoding): the whole buffer and the slot of each entry."""
        if isinstance(start, torch.Tensor):
            at = start + torch.arange(k.shape[2], device=start.device)
            self.k.index_copy_(2, at, k)
            self.v.index_copy_(2, at, v)
            return self.k, self.v, self.slots
        end = start + k.shape[2]
        self._check_room(start, k.shape[2], self.capacity)
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        return self.k[:, :, :end], self.v[:, :, :end], None


class SlidingKVCache(_LayerCache):
    """Ring buffer: slot s lives at entry s % window. What each entry holds follows from how
    many slots were written, so no bookkeeping tensor is kept."""

    def __init__(self, batch: int, n_kv_heads: int, head_dim: int, window: int, dtype: torch.dtype, device):
        self.window = window
        self.k = torch.zeros(batch, n_kv_heads, window, head_dim, dtype=dtype, device=device)
        self.v = torch.zeros(batch, n_kv_heads, window, head_dim, dtype=dtype, device=device)

    def tensors(self) -> list[torch.Tensor]:
        return [self.k, self.v]

    def _ring_slots(self, written: int, device) -> torch.Tensor:
        """Absolute slot held by each ring entry after `written` slots; -1 where still empty."""
        j = torch.arange(self.window, device=device)
        slot = j + self.window * torch.div(written - 1 - j, self.window, rounding_mode="floor")
        return torch.where(j < written, slot, torch.full_like(slot, -1))

    def update(self, k: torch.Tensor, v: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return the keys the new tokens may need with the slot of each (-1 = empty), and keep
        only the newest `window` of them in the ring."""
        T = k.shape[2]
        if isinstance(start, torch.Tensor) and T == 1:
            # static decoding: the whole ring, entries not yet written marked -1
            entry = (start % self.window).view(1)
            self.k.index_copy_(2, entry, k)
            self.v.index_copy_(2, entry, v)
            return self.k, self.v, self._ring_slots(start + 1, k.device)
        if isinstance(start, torch.Tensor):
            raise ValueError("static decoding writes one token per step into a sliding-window cache")
        if T == 1:
            # one token: after writing it, the ring holds exactly its window (or, before the
            # ring first fills, entries 0..start hold slots 0..start)
            entry = start % self.window
            self.k[:, :, entry] = k[:, :, 0]
            self.v[:, :, entry] = v[:, :, 0]
            n = min(start + 1, self.window)
            return self.k[:, :, :n], self.v[:, :, :n], self._ring_slots(start + 1, k.device)[:n]
        # several tokens: the earlier ones need keys the later ones will overwrite in the ring
        new_slots = torch.arange(start, start + T, device=k.device)
        slots = torch.cat((self._ring_slots(start, k.device), new_slots))
        k_all = torch.cat((self.k, k), dim=2)
        v_all = torch.cat((self.v, v), dim=2)
        keep = min(T, self.window)
        entries = new_slots[-keep:] % self.window
        self.k[:, :, entries] = k[:, :, -keep:]
        self.v[:, :, entries] = v[:, :, -keep:]
        return k_all, v_all, slots


class MLACache(_LayerCache):
    """[latent | rope key] per token: (B, capacity, kv_lora_rank + qk_rope_head_dim)."""

    def __init__(self, batch: int, rank: int, rope_dim: int, capacity: int, dtype: torch.dtype, device):
        self.capacity = capacity
        self.kv = torch.zeros(batch, capacity, rank + rope_dim, dtype=dtype, device=device)

    def prepare_static(self) -> None:
        if getattr(self, "slots", None) is None:  # entry i holds slot i
            self.slots = torch.arange(self.capacity, device=self.tensors()[0].device)

    def tensors(self) -> list[torch.Tensor]:
        return [self.kv]

    def update(self, latent_pe: torch.Tensor, start) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Store (B, T, rank + rope_dim) at [start, start+T); return all so far, and None (slots
        0..end-1 in order), or with a tensor start the whole buffer and each entry's slot."""
        if isinstance(start, torch.Tensor):
            self.kv.index_copy_(1, start + torch.arange(latent_pe.shape[1], device=start.device), latent_pe)
            return self.kv, self.slots
        end = start + latent_pe.shape[1]
        self._check_room(start, latent_pe.shape[1], self.capacity)
        self.kv[:, start:end] = latent_pe
        return self.kv[:, :end], None


class DeltaNetCache(_LayerCache):
    """Per sequence: the last conv_kernel - 1 inputs of the causal depthwise convolution,
    conv (B, conv_channels, kernel - 1), and the recurrent state, state (B, n_v_heads,
    k_head_dim, v_head_dim). Nothing here grows with the sequence; both start at zero, which
    is what an empty history means to the convolution and to the delta rule.

    The recurrent state is kept in float32 whatever the model's dtype (float64 for a float64
    model), as HF's reference does: it accumulates every token of a generation, and rounding it
    to bfloat16 at each step would drift."""

    def __init__(self, batch: int, conv_channels: int, conv_kernel: int, n_heads: int, k_dim: int, v_dim: int, dtype: torch.dtype, device):
        self.conv = torch.zeros(batch, conv_channels, conv_kernel - 1, dtype=dtype, device=device)
        state_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        self.state = torch.zeros(batch, n_heads, k_dim, v_dim, dtype=state_dtype, device=device)

    def tensors(self) -> list[torch.Tensor]:
        return [self.conv, self.state]


class Cache:
    """Every layer's cache for one batch of sequences, and how far they are filled."""

    def __init__(self, layers: list[_LayerCache], capacity: int, pad: torch.Tensor | None):
        self.layers = layers
        self.capacity = capacity
        self.pad = pad
        self.length = 0  # slots written so far
        # static decoding: the next slot as a 0-dim tensor on the device, advanced in place by
        # each decode step (Transformer.decode_step); None until first used
        self.slot: torch.Tensor | None = None

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.layers)

    def start_static(self) -> torch.Tensor:
        """Switch to static decoding from the current length (after a prefill): returns the
        slot tensor that decode steps advance in place."""
        for c in self.layers:
            c.prepare_static()
        device = self.tensors()[0].device
        self.slot = torch.tensor(self.length, dtype=torch.long, device=device)
        return self.slot

    def tensors(self) -> list[torch.Tensor]:
        return [t for c in self.layers for t in c.tensors()]
