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
        """The decode path, a few float32 rows on the CPU through the C kernel, with as little
        Python around the call as possible (a decode step makes ~7 such calls per layer, and
        a buffer read through nn.Module.__getattr__ costs about a microsecond); None when another
        path applies (packed_linear then decides everything)."""
        d = self.__dict__
        if (d["kernel"] not in ("auto", "native") or x.dtype != torch.float32 or d["dtype"] != torch.float32
                or x.device.type != "cpu" or torch.compiler.is_compiling()):
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
        y = prep(x.reshape(m, k).contiguous())
        return None if y is None else y.view(*x.shape[:-1], y.shape[-1])

    # a new buffer (.to(), .float(), load_state_dict) invalidates the prepared kernel arguments
    def _apply(self, fn, recurse=True):
        self.__dict__.pop("_prep", None)
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs):
        self.__dict__.pop("_prep", None)
        return super()._load_from_state_dict(*args, **kwargs)

    def _kernel_layout(self):
        return self.layout() if self.kernel in ("auto", "native") and not torch.compiler.is_compiling() else None

    def layout(self):
        """The C kernel's (scale, min) for this weight (quant/native.py), built once per buffer."""
        key = (self.q.data_ptr(), self.scale.data_ptr(), self.scale.dtype, self.q.device)
        if getattr(self, "_layout_key", None) != key:
            self._layout = native.kernel_layout(self.packed) if self.q.device.type == "cpu" else None
            self._layout_key = key
        return self._layout

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
            return y if self.bias is None else y.add_(self.bias)
        return packed_linear(x.to(self.dtype), self.packed, self.bias, self.kernel, self.fused_max_tokens, self._kernel_layout())


class QuantEmbedding(_Packed):
    def __init__(self, w: PackedWeight, kernel: str = "auto"):
        super().__init__(w, kernel)
        self.num_embeddings, self.embedding_dim = w.shape

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.packed.dequantize(self.dtype, rows=ids.reshape(-1))
        return rows.view(*ids.shape, self.embedding_dim)

    def linear(self, h: torch.Tensor) -> torch.Tensor:
        """h @ weight.T: a tied head."""
        return packed_linear(h.to(self.dtype), self.packed, None, self.kernel, self.fused_max_tokens, self._kernel_layout())


def set_kernel(model: nn.Module, kernel: str, fused_max_tokens: int | None = None) -> None:
    """Choose the kernel of every packed module of `model` (quant/kernels.py)."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; expected one of {', '.join(KERNELS)}")
    for m in model.modules():
        if isinstance(m, _Packed):
            m.kernel = kernel
            if fused_max_tokens is not None:
                m.fused_max_tokens = fused_max_tokens
