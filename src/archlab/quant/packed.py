"""Packed weights: a matrix (N, K) kept as small integers with float32 scales (and mins).

Two layouts cover every format archlab keeps:
  int8: q int8 (N, K), one value per byte;                      w = q * scale (+ min)
  int4: q uint8 (N, K/2), two values 0..15 per byte (low nibble = column j, high nibble =
        column j + K/2 of the row, so unpacking is two whole-tensor ops);  w = q * scale + min
scale and min are float32 (N, K/block): one per `block` consecutive columns of a row (block = K
is per-channel). The product q * scale is exact in float32 for every format read here (a float16
or float32 scale times an integer of at most 8 bits), and adding min is then one rounding, the
same one gguf-py's numpy makes: dequantize() equals gguf.quants.dequantize bit for bit.

Torch only; no file format is known here (quant/gguf.py repacks llama.cpp's blocks)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PackedWeight", "quantize_int8", "quantize_int4"]


@dataclass
class PackedWeight:
    """A packed (N, K) matrix; see the module docstring for the layout."""

    q: torch.Tensor  # int8 (N, K) or uint8 (N, K // 2)
    scale: torch.Tensor  # float32 (N, K // block)
    min: torch.Tensor | None  # float32 (N, K // block), or None for w = q * scale
    bits: int  # 8 or 4
    fmt: str = ""  # where it came from ('Q4_1', 'int8', ...), for messages and reports
    # subtracted from the integers before they are scaled: llama.cpp's Q4_0 is d * (q - 8), whose
    # sign of zero (-0.0 for a negative d) q * d + (-8 d) would not keep
    offset: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        n, k = self.q.shape
        return (n, k * 2 if self.bits == 4 else k)

    @property
    def block(self) -> int:
        return self.shape[1] // self.scale.shape[1]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.q, self.scale, self.min) if t is not None)

    def ints(self) -> torch.Tensor:
        """The integers (N, K) as int16 (uint8 nibbles unpacked for int4)."""
        if self.bits == 8:
            return self.q.to(torch.int16) - self.offset
        return torch.cat((self.q & 15, self.q >> 4), dim=-1).to(torch.int16) - self.offset

    def dequantize(self, dtype: torch.dtype = torch.float32, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The float matrix (or only `rows` of it). Multiply, then add: two roundings at most,
        never a fused multiply-add, so that the values equal gguf-py's exactly."""
        q, scale, mn = self.q, self.scale, self.min
        if rows is not None:
            q, scale = q[rows], scale[rows]
            mn = mn[rows] if mn is not None else None
        if self.bits == 4:
            q = torch.cat((q & 15, q >> 4), dim=-1)
        if self.offset:
            q = q.to(torch.int16) - self.offset
        n, k = q.shape
        nb = scale.shape[-1]
        w = q.view(n, nb, k // nb).to(torch.float32) * scale.unsqueeze(-1)
        if mn is not None:
            w = w.add_(mn.unsqueeze(-1))
        return w.view(n, k).to(dtype)

    def select_rows(self, index: torch.Tensor) -> "PackedWeight":
        """The rows `index` (a permutation or subset), still packed."""
        return PackedWeight(self.q[index].contiguous(), self.scale[index].contiguous(),
                            None if self.min is None else self.min[index].contiguous(), self.bits, self.fmt, self.offset)

    def to(self, device: torch.device | str) -> "PackedWeight":
        return PackedWeight(self.q.to(device), self.scale.to(device),
                            None if self.min is None else self.min.to(device), self.bits, self.fmt, self.offset)


def _blocks(w: torch.Tensor, block: int | None) -> tuple[torch.Tensor, int]:
    n, k = w.shape
    block = k if block is None else block
    if block <= 0 or k % block:
        raise ValueError(f"block size {block} does not divide the {k} columns of a ({n}, {k}) weight")
    return w.detach().to(torch.float32).reshape(n, k // block, block), block


def quantize_int8(w: torch.Tensor, block: int | None = None) -> PackedWeight:
    """Symmetric int8, round to nearest: scale = max|w| / 127 per `block` columns (None: per row)."""
    wb, _ = _blocks(w, block)
    scale = wb.abs().amax(-1) / 127.0
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(wb / safe.unsqueeze(-1)).clamp_(-127, 127).to(torch.int8)
    return PackedWeight(q.reshape(w.shape), scale.contiguous(), None, 8, "int8")


def quantize_int4(w: torch.Tensor, block: int | None = 32) -> PackedWeight:
    """Asymmetric 4-bit (as llama.cpp's Q4_1): per `block` columns, min = min(w) and
    scale = (max(w) - min(w)) / 15, q = round((w - min) / scale) in 0..15."""
    wb, block = _blocks(w, block)
    if w.shape[1] % 2:
        raise ValueError(f"int4 packs two columns per byte; a ({w.shape[0]}, {w.shape[1]}) weight has an odd column count")
    lo, hi = wb.amin(-1), wb.amax(-1)
    scale = (hi - lo) / 15.0
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round((wb - lo.unsqueeze(-1)) / safe.unsqueeze(-1)).clamp_(0, 15).to(torch.uint8).reshape(w.shape)
    return PackedWeight(pack_nibbles(q), scale.contiguous(), lo.contiguous(), 4, "int4")


def pack_nibbles(q: torch.Tensor) -> torch.Tensor:
    """uint8 values 0..15 (N, K) -> (N, K/2): column j in the low nibble, column j + K/2 in the high."""
    half = q.shape[-1] // 2
    return (q[..., :half] | (q[..., half:] << 4)).contiguous()
