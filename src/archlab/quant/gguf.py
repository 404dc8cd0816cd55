"""llama.cpp's quantized blocks -> PackedWeight, repacked once at load.

Each function reads the integers and scales exactly as gguf-py's dequantize_blocks does
(gguf/quants.py: Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K), but stops before the float product:
the scales are formed in float32 as gguf-py forms them (a K-quant's d * sc is one float32
product, exact), and PackedWeight.dequantize multiplies and adds as it does, so the values are
bit for bit gguf-py's. tests/test_quant.py checks every type against gguf.quants.dequantize.
Row-major: a tensor's rows (N, bytes per row) hold whole blocks along K."""

from __future__ import annotations

import numpy as np
import torch

from .packed import PackedWeight, pack_nibbles

__all__ = ["KEPT_TYPES", "pack_gguf"]

QK_K = 256


def _f16(b: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(b).view(np.float16).astype(np.float32)


def _nibbles(qs: np.ndarray, group: int) -> np.ndarray:
    """gguf-py's unpacking of 4-bit values: per `group` bytes, the low nibbles then the high ones."""
    n = qs.shape[0]
    out = qs.reshape(n, -1, 1, group) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
    return (out & np.uint8(0x0F)).reshape(n, -1)


def _q8_0(b):
    d, x = b[:, :2], b[:, 2:]
    return np.ascontiguousarray(x).view(np.int8), _f16(d), None, 8


def _q4_0(b):
    return _nibbles(b[:, 2:], 16), _f16(b[:, :2]), None, 4  # d * (q - 8): offset 8, set below


def _q4_1(b):
    return _nibbles(b[:, 4:], 16), _f16(b[:, :2]), _f16(b[:, 2:4]), 4


def _k_scales(b):
    from gguf.quants import Q4_K

    n = b.shape[0]
    d, dmin = _f16(b[:, :2]), _f16(b[:, 2:4])
    sc, m = Q4_K.get_scale_min(np.ascontiguousarray(b[:, 4:4 + Q4_K.K_SCALE_SIZE]))
    scale = (d * sc.astype(np.float32)).reshape(n, -1)
    neg_min = -(dmin * m.astype(np.float32)).reshape(n, -1)  # d * q - dm == d * q + (-dm)
    return scale, neg_min


def _q4_k(b):
    scale, mn = _k_scales(b)
    return _nibbles(b[:, 16:], 32), scale, mn, 4


def _q5_k(b):
    n = b.shape[0]
    scale, mn = _k_scales(b)
    qh, qs = b[:, 16:16 + QK_K // 8], b[:, 16 + QK_K // 8:]
    ql = _nibbles(qs, 32).reshape(n, -1, 32)
    qh = qh.reshape(n, -1, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 1, 8, 1)
    qh = (qh & np.uint8(1)).reshape(n, -1, 32)
    return (ql | (qh << np.uint8(4))).reshape(n, -1).astype(np.int8), scale, mn, 8


def _q6_k(b):
    n = b.shape[0]
    ql, qh = b[:, :QK_K // 2], b[:, QK_K // 2:QK_K // 2 + QK_K // 4]
    scales, d = b[:, QK_K // 2 + QK_K // 4:QK_K // 2 + QK_K // 4 + QK_K // 16], b[:, -2:]
    scale = (_f16(d) * np.ascontiguousarray(scales).view(np.int8).astype(np.float32)).reshape(n, -1)
    ql = ql.reshape(n, -1, 1, 64) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
    ql = (ql & np.uint8(0x0F)).reshape(n, -1, 32)
    qh = qh.reshape(n, -1, 1, 32) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    qh = (qh & np.uint8(0x03)).reshape(n, -1, 32)
    q = (ql | (qh << np.uint8(4))).astype(np.int8) - np.int8(32)
    return q.reshape(n, -1), scale, None, 8


# ggml type name -> (values per block, bytes per block, reader of (blocks, bytes) -> q, scale, min, bits)
_READERS = {"Q8_0": (32, 34, _q8_0), "Q4_0": (32, 18, _q4_0), "Q4_1": (32, 20, _q4_1),
            "Q4_K": (256, 144, _q4_k), "Q5_K": (256, 176, _q5_k), "Q6_K": (256, 210, _q6_k)}
KEPT_TYPES = frozenset(_READERS)


def pack_gguf(raw: np.ndarray, type_name: str, shape: tuple[int, int]) -> PackedWeight:
    """A quantized 2-D tensor's bytes (rows, bytes per row), as GGUFFile.raw gives them, of
    `shape` (N, K) in torch's order -> PackedWeight."""
    if type_name not in _READERS:
        raise ValueError(f"ggml type {type_name} is not kept packed; kept: {', '.join(sorted(KEPT_TYPES))}")
    per_block, nbytes, read = _READERS[type_name]
    n, k = shape
    blocks = np.ascontiguousarray(raw).reshape(n * (k // per_block), nbytes)
    q, scale, mn, bits = read(blocks)
    q = torch.from_numpy(np.ascontiguousarray(q).reshape(n, k))
    scale = torch.from_numpy(np.ascontiguousarray(scale, dtype=np.float32).reshape(n, -1))
    mn = None if mn is None else torch.from_numpy(np.ascontiguousarray(mn, dtype=np.float32).reshape(n, -1))
    if bits == 4:
        q = pack_nibbles(q.to(torch.uint8))
    else:
        q = q.to(torch.int8)
    return PackedWeight(q, scale, mn, bits, type_name, offset=8 if type_name == "Q4_0" else 0)
