"""Packed-weight matmuls against the fp32 F.linear, at SmolLM2-135M's shapes, 1 and 256 tokens.

Each candidate and F.linear run interleaved (A B A B ...) after warm-up; the figure is the
median over repetitions of t(F.linear) / t(candidate): above 1 is faster than fp32.
    PYTHONPATH=src python benchmarks/quant_matmul.py [--reps 9] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from archlab.quant.kernels import packed_linear
from archlab.quant.packed import quantize_int4, quantize_int8

SHAPES = [(576, 576), (1536, 576), (576, 1536), (49152, 576)]  # (out, in): attention, up/gate, down, lm head


def _time(fn, n):
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def ratio(base, cand, reps, inner):
    base(), cand(), base(), cand()
    r = []
    for _ in range(reps):
        a = _time(base, inner)
        b = _time(cand, inner)
        r.append(a / b)
    return statistics.median(r)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    with torch.no_grad():
        for n, k in SHAPES:
            w = torch.randn(n, k) * 0.02
            packs = {"int8/ch": quantize_int8(w), "Q8_0-like int8/32": quantize_int8(w, 32), "int4/32": quantize_int4(w, 32)}
            for m in (1, 256):
                x = torch.randn(m, k)
                inner = max(1, int(2e7 / (n * k * m))) if m > 1 else max(1, int(2e8 / (n * k)))
                for name, pw in packs.items():
                    kernels = ["dequant", "fused"] + (["int8pack"] if name == "int8/ch" else [])
                    for kern in kernels:
                        if kern == "fused" and m > 16:
                            continue
                        r = ratio(lambda: F.linear(x, w), lambda: packed_linear(x, pw, kernel=kern), args.reps, inner)
                        rows.append({"shape": f"{n}x{k}", "tokens": m, "weight": name, "kernel": kern, "speed_vs_fp32": round(r, 3)})
                        print(rows[-1], flush=True)
    print("\n| shape (out x in) | tokens | weight | kernel | speed vs fp32 F.linear |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['tokens']} | {r['weight']} | {r['kernel']} | {r['speed_vs_fp32']:.2f}x |")
    if args.json:
        json.dump({"threads": args.threads, "reps": args.reps, "rows": rows}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
