"""attention-kernel: "Fused attention (FlashAttention) is 2-4x faster than standard attention
and needs memory linear in sequence length".

Dao et al. 2022 (FlashAttention, arXiv:2205.14135, sec. 4) report 2-4x faster attention than a
standard PyTorch implementation and memory that grows linearly in sequence length, because the
(T, T) score matrix is never written to memory. PyTorch exposes such kernels through
F.scaled_dot_product_attention (archlab's attention calls it: src/archlab/nn/attention.py).

Measured: causal attention, forward and forward+backward, against sequence length, for
  eager   softmax(Q K^T / sqrt(d) + causal mask) V, written out below (the baseline);
  SDPA    with each backend sdpa_kernel can pin on this device: flash (CPU and CUDA),
          memory-efficient (CUDA), math (PyTorch's unfused reference), and FlexAttention
          (CUDA, compiled) where available;
and the peak memory of one forward+backward. Every backend's output is checked against eager
before it is timed. Timings are interleaved across implementations (norm_speed.interleaved_times).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from .core import Claim, Context, Outcome
from .norm_speed import interleaved_times

CONFIRM_AT = 2.0  # the claim's lower end
DENY_BELOW = 1.2
LINEAR_BELOW = 1.5  # growth exponent of peak memory: ~1 is linear, ~2 quadratic; 1.5 splits them

RULE = (f"speed-up = eager forward+backward time / fused forward+backward time at the longest sequence length "
        f"measured (fused: SDPA's flash backend, or memory-efficient where flash does not run); memory exponent = "
        f"log(peak ratio) / log(length ratio) of one forward+backward's peak memory between the two longest lengths. "
        f"Confirmed when speed-up >= {CONFIRM_AT:g} and the fused exponent < {LINEAR_BELOW:g} while eager's is >= "
        f"{LINEAR_BELOW:g}; not confirmed when speed-up < {DENY_BELOW:g} or the fused exponent >= {LINEAR_BELOW:g}; "
        f"mixed otherwise. Times are medians over repeats, implementations interleaved")


def eager_attention(q, k, v):
    """The standard attention the paper compares against: the (T, T) scores and probabilities
    are materialised. q, k, v (B, H, T, d), causal."""
    import torch

    T = q.shape[-2]
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
    scores = scores.masked_fill(future, float("-inf"))
    # softmax in float32 as half-precision models do it (a no-op for float32 inputs)
    return torch.matmul(torch.softmax(scores.float(), dim=-1).to(q.dtype), v)


def exponent(lengths: list[int], values: list[float]) -> float:
    """Growth exponent between the last two points: values ~ length ** exponent."""
    return math.log(values[-1] / values[-2]) / math.log(lengths[-1] / lengths[-2])


def verdict_from(speedup: float, fused_exp: float, eager_exp: float) -> str:
    if speedup < DENY_BELOW or fused_exp >= LINEAR_BELOW:
        return "not confirmed"
    if speedup >= CONFIRM_AT and eager_exp >= LINEAR_BELOW:
        return "confirmed"
    return "mixed"


def _peak_bytes_cpu(fn) -> int:
    """Largest number of bytes live (above what was live before) during fn(), from
    torch.profiler's memory records: each op's own allocations net of its frees, plus the
    frees outside any op, summed in the order the ops start. A CPU has no allocator peak
    counter; this follows the same allocations torch.cuda.max_memory_allocated counts."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    live = peak = 0
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


def _run(ctx: Context) -> Outcome:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    device = ctx.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else None
    dtype = torch.bfloat16 if cuda else torch.float32  # flash on CUDA needs half precision; the paper used fp16
    tol = 2e-2 if cuda else 1e-4
    B, H, D = ctx.pick((1, 4, 64), (1, 8, 64), (4, 16, 64) if cuda else (1, 8, 64))
    lengths = ctx.pick([128, 256], [256, 512, 1024, 2048, 4096], [512, 1024, 2048, 4096, 8192])
    repeats = ctx.pick(3, 5, 20)
    notes: list[str] = []

    backends = {"flash": SDPBackend.FLASH_ATTENTION, "math": SDPBackend.MATH}
    if cuda:
        backends = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}

    def sdpa(backend):
        def attn(q, k, v):
            with sdpa_kernel([backend]):
                return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return attn

    impls: dict[str, Any] = {"eager": eager_attention, **{name: sdpa(b) for name, b in backends.items()}}
    if cuda and ctx.budget != "smoke":
        try:
            from torch.nn.attention.flex_attention import create_block_mask, flex_attention

            flex = torch.compile(flex_attention)
            masks: dict[int, Any] = {}

            def flex_attn(q, k, v):
                T = q.shape[-2]
                if T not in masks:
                    masks[T] = create_block_mask(lambda b, h, qi, ki: qi >= ki, None, None, T, T, device=device)
                return flex(q, k, v, block_mask=masks[T])

            impls["flex"] = flex_attn
        except Exception as e:  # noqa: BLE001 - optional; the verdict does not use it
            notes.append(f"FlexAttention unavailable ({type(e).__name__}); left out")

    rows = []
    dropped: dict[str, str] = {}
    for T in lengths:
        gen = torch.Generator().manual_seed(ctx.seed * 100003 + T)
        q, k, v = (torch.randn(B, H, T, D, generator=gen).to(device=device, dtype=dtype).requires_grad_(True) for _ in range(3))
        grad = torch.randn(B, H, T, D, generator=gen).to(device=device, dtype=dtype)
        row: dict[str, Any] = {"length": T, "max_abs_diff": {}, "median_s": {}, "peak_bytes": {},
                               "eager_scores_bytes": B * H * T * T * q.element_size()}
        live: dict[str, Any] = {}
        with torch.no_grad():
            ref = eager_attention(q, k, v)
        for name, fn in impls.items():
            if name in dropped:
                continue
            try:
                with torch.no_grad():
                    out = fn(q, k, v)
                diff = (out.float() - ref.float()).abs().max().item()
            except Exception as e:  # noqa: BLE001 - a backend this device or dtype lacks
                dropped[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
                continue
            row["max_abs_diff"][name] = diff
            if diff > tol:
                dropped[name] = f"output differs from eager by {diff:.2g} at length {T}"
                continue
            live[name] = fn
        del ref

        def fwd_of(fn):
            def run():
                with torch.no_grad():
                    fn(q, k, v)
            return run

        def fwd_bwd_of(fn):
            def run():
                q.grad = k.grad = v.grad = None
                fn(q, k, v).backward(grad)
            return run

        fns = {f"{n}/fwd": fwd_of(f) for n, f in live.items()} | {f"{n}/fwd+bwd": fwd_bwd_of(f) for n, f in live.items()}
        ctx.say(f"length {T}: timing {', '.join(live)} ({repeats} repeats)")
        times = interleaved_times(fns, repeats, warmup=1, sync=sync)
        row["median_s"] = {k_: statistics.median(v_) for k_, v_ in times.items()}
        row["times_s"] = times
        for name, fn in live.items():
            run = fwd_bwd_of(fn)
            if cuda:
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                run()
                torch.cuda.synchronize()
                row["peak_bytes"][name] = torch.cuda.max_memory_allocated() - base
            else:
                q.grad = k.grad = v.grad = None
                row["peak_bytes"][name] = _peak_bytes_cpu(run)
        rows.append(row)
        del q, k, v, grad

    for name, why in dropped.items():
        notes.append(f"{name} left out: {why}")
    fused = next((n for n in ("flash", "efficient") if all(f"{n}/fwd+bwd" in r["median_s"] for r in rows)), None)
    if fused is None:
        raise RuntimeError("no fused SDPA backend ran at every length on this device: nothing to compare eager against")
    last = rows[-1]
    speedup = last["median_s"]["eager/fwd+bwd"] / last["median_s"][f"{fused}/fwd+bwd"]
    speedup_fwd = last["median_s"]["eager/fwd"] / last["median_s"][f"{fused}/fwd"]
    fused_exp = exponent(lengths, [r["peak_bytes"][fused] for r in rows])
    eager_exp = exponent(lengths, [r["peak_bytes"]["eager"] for r in rows])
    verdict = verdict_from(speedup, fused_exp, eager_exp)
    mem_ratio = last["peak_bytes"]["eager"] / last["peak_bytes"][fused]
    summary = (f"At length {last['length']}, SDPA {fused} is {speedup:.2f}x eager's speed forward+backward "
               f"({speedup_fwd:.2f}x forward) and uses {mem_ratio:.1f}x less peak memory; peak memory grows as "
               f"length^{fused_exp:.2f} fused vs length^{eager_exp:.2f} eager "
               f"(lengths {lengths[-2]}->{lengths[-1]})")

    if not cuda:
        notes.append("The paper's speed-ups are for GPUs, where attention is bound by HBM traffic that the fused "
                     "kernel avoids; a CPU's balance of memory bandwidth, cache and compute is different, so the "
                     "speed-up measured here need not match it. The memory claim does not depend on the device.")
        notes.append("CPU peak memory is counted from torch.profiler's memory records (allocations per op, in op "
                     "order): the same allocations a CUDA peak counter sees, not the process's resident size.")
    if ctx.budget == "smoke":
        notes.append("At smoke sizes (lengths up to 256) fixed costs dominate both times and memory; the default "
                     "budget goes to 4096.")
    notes.append(f"Eager's (T, T) score matrix alone is {last['eager_scores_bytes'] / 2**20:.1f} MiB at length "
                 f"{last['length']} (batch {B}, {H} heads, {str(dtype).removeprefix('torch.')}), per copy; "
                 "eager keeps several (scores, masked scores, probabilities, their gradients).")

    measurements = {
        "device": device, "dtype": str(dtype).removeprefix("torch."), "batch": B, "heads": H, "head_dim": D,
        "lengths": lengths, "repeats": repeats, "fused": fused, "implementations": list(impls),
        "dropped": dropped, "rows": rows, "speedup_fwd_bwd": speedup, "speedup_fwd": speedup_fwd,
        "memory_exponent": {"fused": fused_exp, "eager": eager_exp}, "memory_ratio": mem_ratio,
    }

    def plot(fig) -> None:
        names = [n for n in impls if all(f"{n}/fwd+bwd" in r["median_s"] for r in rows)]
        ax = fig.add_subplot(1, 2, 1)
        for n in names:
            ax.plot(lengths, [r["median_s"][f"{n}/fwd+bwd"] * 1e3 for r in rows], "o-", label=f"{n} fwd+bwd")
            ax.plot(lengths, [r["median_s"][f"{n}/fwd"] * 1e3 for r in rows], "s--", alpha=0.5, label=f"{n} fwd")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length")
        ax.set_ylabel("ms (median)")
        ax.set_title(f"speed-up at {last['length']}: {speedup:.2f}x (fwd+bwd)", fontsize=9)
        ax.legend(fontsize=6)
        ax = fig.add_subplot(1, 2, 2)
        for n in names:
            ax.plot(lengths, [r["peak_bytes"][n] / 2**20 for r in rows], "o-", label=n)
        ax.plot(lengths, [r["eager_scores_bytes"] / 2**20 for r in rows], "k:", label="one (T,T) matrix")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length")
        ax.set_ylabel("peak MiB, one fwd+bwd")
        ax.set_title(f"exponent: {fused} {fused_exp:.2f}, eager {eager_exp:.2f}", fontsize=9)
        ax.legend(fontsize=7)

    return Outcome(verdict=verdict, rule=RULE, summary=summary, measurements=measurements, plot=plot, notes=notes)


CLAIM = Claim(
    name="attention-kernel",
    statement="Fused attention (FlashAttention) is 2-4x faster than standard attention and needs memory linear in sequence length",
    # Dao et al. 2022, arXiv:2205.14135: speed-ups over standard PyTorch attention and linear memory, sec. 4
    source="Dao et al. 2022, FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness (NeurIPS), sec. 4; PyTorch's scaled_dot_product_attention",
    run=_run,
    needs_training=False,
)
