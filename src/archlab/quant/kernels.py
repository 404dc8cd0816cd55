"""Matmuls against a PackedWeight: y = x @ W.T (+ bias) without a float copy of W kept.

Kernels, chosen by name (QuantLinear.kernel), never by model family:
  "dequant"  W dequantized per call into a temporary, then F.linear: one GEMM, best when many
             tokens share the weight (prefill), where the dequantization is spread over them;
  "fused"    torch.compile'd block dot products: x times the integers per block, scaled, plus
             min times the block sums of x; inductor fuses the int -> float convert into the
             reduction, so the weight is read once as bytes (decode, few tokens: memory-bound);
  "int8pack" torch._weight_int8pack_mm (per-channel int8 without min only);
  "native"   the C kernel of quant/gemv.c (quant/native.py): the integers widened in registers,
             block by block, OpenMP over rows; CPU, up to 16 tokens;
  "auto"     "native" up to `fused_max_tokens` tokens on the CPU when it is built, else "dequant"
             (the whole-model decode, benchmarks/quant_quality.py, is where the choice was made:
             an isolated matmul keeps a float32 weight in cache and misleads).
benchmarks/quant_matmul.py measures them against F.linear; tests/test_quant.py holds each equal
to F.linear on the dequantized weight."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from . import native
from .packed import PackedWeight

__all__ = ["KERNELS", "packed_linear", "fused_gemv"]

KERNELS = ("auto", "dequant", "fused", "int8pack", "native")
FUSED_MAX_TOKENS = 8  # above this the per-token reduction loses to one GEMM (benchmarks/quant_matmul.py)


def _ints(q: torch.Tensor, bits: int, offset: int) -> torch.Tensor:
    if bits == 4:
        q = torch.cat((q & 15, q >> 4), dim=-1)
    q = q.to(torch.float32)
    return q - offset if offset else q


def _fused(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, mn: torch.Tensor | None,
           bits: int, offset: int) -> torch.Tensor:
    """x (M, K) float32 -> (M, N): per block b of a row n, scale[n, b] * (x_b . q_nb) + min[n, b] * sum(x_b)."""
    n, nb = scale.shape
    m, k = x.shape
    xb = x.view(m, 1, nb, k // nb)  # (M, 1, nb, bs)
    w = _ints(q, bits, offset).view(1, n, nb, k // nb)  # (1, N, nb, bs)
    y = ((xb * w).sum(-1) * scale).sum(-1)  # (M, N)
    if mn is not None:
        y = y + (xb.sum(-1) * mn).sum(-1)
    return y


# One compiled function per layout (bits, offset, with or without min), so that the layouts of
# one model do not use up dynamo's recompile limit between them; shapes are left to dynamo's
# automatic dynamic shapes (one recompile on the second shape).
_compiled: dict[tuple[int, int, bool], object] = {}


def fused_gemv(x: torch.Tensor, w: PackedWeight) -> torch.Tensor:
    key = (w.bits, w.offset, w.min is not None)
    fn = _compiled.get(key)
    if fn is None:
        bits, offset = w.bits, w.offset
        if w.min is None:
            def layout(x, q, scale):
                return _fused(x, q, scale, None, bits, offset)
        else:
            def layout(x, q, scale, mn):
                return _fused(x, q, scale, mn, bits, offset)
        fn = _compiled[key] = torch.compile(layout)
    return fn(x, w.q, w.scale) if w.min is None else fn(x, w.q, w.scale, w.min)


_warned = False


def _compile_failed(e: Exception) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"archlab.quant: the fused kernel could not be compiled ({type(e).__name__}: {str(e)[:200]}); "
                      "packed layers fall back to the 'dequant' kernel", RuntimeWarning, stacklevel=3)


@torch.library.custom_op("archlab::packed_gemv", mutates_args=())
def _native_op(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, mn: torch.Tensor | None, bits: int,
               offset: int) -> torch.Tensor:
    y = native.gemv(x, PackedWeight(q, scale, mn, bits, "", offset), scale, mn)
    if y is None:  # declined after tracing chose it: the same product the slow way
        y = F.linear(x, PackedWeight(q, scale, mn, bits, "", offset).dequantize())
    return y


@_native_op.register_fake
def _(x, q, scale, mn, bits, offset):
    return x.new_empty(x.shape[0], q.shape[0])


def _native(x2: torch.Tensor, w: PackedWeight) -> torch.Tensor | None:
    """The C kernel's product in float32, or None where it is unavailable or declines (then
    another kernel serves). Under torch.compile it is the custom op, whose fake says the shape."""
    if x2.device.type != "cpu" or not native.available():
        return None
    layout = native.kernel_layout(w)
    if layout is None:
        return None
    if torch.compiler.is_compiling():
        return _native_op(x2.float(), w.q, *layout, w.bits, w.offset)
    return native.gemv(x2.float(), w, *layout)


def _other(x2: torch.Tensor, w: PackedWeight, kernel: str, dtype: torch.dtype) -> torch.Tensor:
    """x2 (M, K) @ w.T through one of the torch kernels."""
    if kernel == "dequant":
        return F.linear(x2, w.dequantize(dtype))
    if kernel == "fused":
        try:
            return fused_gemv(x2.float(), w).to(dtype)
        except Exception as e:  # no C++ compiler, or inductor refusing this device: the GEMM path
            _compile_failed(e)
            return F.linear(x2, w.dequantize(dtype))
    if kernel == "int8pack":
        if w.bits != 8 or w.min is not None or w.offset or w.scale.shape[1] != 1:
            raise ValueError(f"kernel 'int8pack' takes per-channel int8 weights without min; this one is {w.fmt} "
                             f"({w.bits}-bit, block {w.block})")
        return torch._weight_int8pack_mm(x2, w.q, w.scale[:, 0].to(dtype))
    raise ValueError(f"unknown kernel {kernel!r}; expected one of {', '.join(KERNELS)}")


def packed_linear(x: torch.Tensor, w: PackedWeight, bias: torch.Tensor | None = None, kernel: str = "auto",
                  fused_max_tokens: int = FUSED_MAX_TOKENS) -> torch.Tensor:
    """F.linear(x, w.dequantize(), bias) through `kernel` (see the module docstring)."""
    lead, k = x.shape[:-1], x.shape[-1]
    x2 = x.reshape(-1, k)
    y = None
    if kernel in ("auto", "native"):
        limit = native.MAX_ROWS if kernel == "native" else min(fused_max_tokens, native.MAX_ROWS)
        y = _native(x2, w) if x2.shape[0] <= limit else None
        kernel = "dequant"  # where the C kernel does not serve
    y = _other(x2, w, kernel, x.dtype) if y is None else y.to(x.dtype)
    if bias is not None:
        y = y + bias
    return y.view(*lead, y.shape[-1])
