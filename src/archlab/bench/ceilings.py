"""Measured ceilings of this machine: memory bandwidth (reading a tensor far larger than the
caches) and dense GEMM FLOP/s (a large square matmul), fp32 and bf16. Results are reported as
a fraction of these, so a number carries its own yardstick."""

from __future__ import annotations

import torch

from .timing import interleave


def measure(gate, device: str, quick: bool) -> dict:
    # 1 GiB on the CPU is 4x the largest L3 seen here (260 MiB); a GPU needs more than its L2
    n_bytes = (256 if quick else 1024) * 2**20 if device == "cpu" else 4 * 2**30
    x = torch.ones(n_bytes // 4, device=device)
    y = torch.empty_like(x)
    fns = {"sum": lambda: x.sum(), "copy": lambda: y.copy_(x)}
    t = interleave(fns, gate, device, warmup=1, repeats=3 if quick else 7)
    bw = {"read_bytes_s": n_bytes / t.median("sum"), "copy_bytes_s": 2 * n_bytes / t.median("copy"),
          "bytes": n_bytes, "timing": t.summary()}
    del x, y
    n = (1024 if quick else 2048) if device == "cpu" else 8192
    gemm = {"n": n}
    for name, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        a = torch.randn(n, n, device=device, dtype=dt)
        b = torch.randn(n, n, device=device, dtype=dt)
        t = interleave({"mm": lambda: a @ b}, gate, device, warmup=1, repeats=3 if quick else 7)
        gemm[name] = 2 * n**3 / t.median("mm")
        gemm[f"{name}_timing"] = t.summary()
    return {"memory_bandwidth": bw, "gemm_flops": gemm}


def bandwidth(ceil: dict) -> float:
    # weights are read, not copied: the read rate is the yardstick for decoding
    return ceil["memory_bandwidth"]["read_bytes_s"]
