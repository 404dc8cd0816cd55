"""Modules holding packed weights in place of nn.Linear / nn.Embedding, and the swap.

QuantLinear keeps the integers and scales as buffers (they move with .to(device); the scales stay
float32 so the values stay exact, and the matmul runs in the input's dtype); `weight` is a
dequantized view for code that reads the matrix itself (MLA's absorbed decode), not a parameter.
QuantEmbedding gathers the rows it needs and dequantizes only those; a tied head multiplies by
it through `linear`. Which kernel runs is the module's `kernel` (quant/kernels.py)."""

from __future__ import annotations

import torch
from torch import nn

from . import native
from .kernels import FUSED_MAX_TOKENS, KERNELS, packed_linear
from .packed import PackedWeight

__all__ = ["QuantLinear", "QuantEmbedding", "set_kernel"]


class _Packed(nn.Module):
    def __init__(self, w: PackedWeight, kernel: str = "auto"):
        super().__init__()
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; expected one of {', '.join(KERNELS)}")
        self.register_buffer("q", w.q)
        self.register_buffer("scale", w.scale)
        self.register_buffer("min", w.min)
        self.bits, self.fmt, self.offset, self.kernel = w.bits, w.fmt, w.offset, kernel
        self.fused_max_tokens = FUSED_MAX_TOKENS
        self.dtype = torch.float32  # what forward returns; the model's dtype (set by quantize / load)

    def _fast(self, x: torch.Tensor) -> torch.Tensor | None:
        """x @ weight.T in the module's dtype through the C kernel, for a few rows on the CPU, with
        as little Python around the call as possible (a decode step makes ~7 such calls per layer,
        and a buffer read through nn.Module.__getattr__ costs about a microsecond); None when
        another path applies (packed_linear then decides everything). The kernel's arguments are
        prepared once per buffer (native.Prepared)."""
        d = self.__dict__
        if d["kernel"] not in ("auto", "native") or x.device.type != "cpu" or torch.compiler.is_compiling():
            return None
        k = x.shape[-1]
        m = x.numel() // k if k else 0
        if not 0 < m <= (native.MAX_ROWS if d["kernel"] == "native" else d["fused_max_tokens"]):
            return None
        prep = d.get("_prep")
        if prep is None or (prep and prep.sources and prep.stale()):
            prep = d["_prep"] = native.prepare(self.packed) or False
        if prep is False:
            return None
        dtype = d["dtype"]
        f32 = dtype == torch.float32
        # in the module's dtype first, as packed_linear's other paths see x, then the kernel's float32
        xf = x if f32 and x.dtype == dtype else x.to(dtype).float()
        y = prep(xf.reshape(m, k).contiguous())
        if y is None:
            return None
        return (y if f32 else y.to(dtype)).view(*x.shape[:-1], y.shape[-1])

    # a new buffer (.to(), .float(), load_state_dict) invalidates the prepared kernel arguments
    def _apply(self, fn, recurse=True):
        self.__dict__.pop("_prep", None)
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs):
        self.__dict__.pop("_prep", None)
        return super()._load_from_state_dict(*args, **kwargs)

    @property
    def device(self) -> torch.device:
        return self.q.device

    @property
    def packed(self) -> PackedWeight:
        # the scales stay float32 whatever model.to(dtype) did to the buffers: they are exact there
        scale = self.scale.float()
        mn = None if self.min is None else self.min.float()
        return PackedWeight(self.q, scale, mn, self.bits, self.fmt, self.offset)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized matrix (a new tensor on every access)."""
        return self.packed.dequantize(self.dtype)

    def extra_repr(self) -> str:
        n, k = self.packed.shape
        return f"{k} -> {n}, {self.fmt} ({self.bits}-bit, block {self.packed.block}), kernel={self.kernel}"


class QuantLinear(_Packed):
    def __init__(self, w: PackedWeight, bias: torch.Tensor | None = None, kernel: str = "auto"):
        super().__init__(w, kernel)
        self.out_features, self.in_features = w.shape
        self.bias = nn.Parameter(bias.detach(), requires_grad=False) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._fast(x)
        if y is not None:
            return y if self.bias is None else y + self.bias
        return packed_linear(x.to(self.dtype), self.packed, self.bias, self.kernel, self.fused_max_tokens)


class QuantEmbedding(_Packed):
    def __init__(self, w: PackedWeight, kernel: str = "auto"):
        super().__init__(w, kernel)
        self.num_embeddings, self.embedding_dim = w.shape

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.packed.dequantize(self.dtype, rows=ids.reshape(-1))
        return rows.view(*ids.shape, self.embedding_dim)

    def linear(self, h: torch.Tensor) -> torch.Tensor:
        """h @ weight.T: a tied head."""
        y = self._fast(h)
        return y if y is not None else packed_linear(h.to(self.dtype), self.packed, None, self.kernel, self.fused_max_tokens)


def set_kernel(model: nn.Module, kernel: str, fused_max_tokens: int | None = None) -> None:
    """Choose the kernel of every packed module of `model` (quant/kernels.py)."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; expected one of {', '.join(KERNELS)}")
    for m in model.modules():
        if isinstance(m, _Packed):
            m.kernel = kernel
            if fused_max_tokens is not None:
                m.fused_max_tokens = fused_max_tokens
