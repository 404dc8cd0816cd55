"""The MoE layer, grouped expert GEMM against the per-expert loop, forward and forward+backward,
at the issue's shape: 64 experts, top-8 (OLMoE's routing, config.json of allenai/OLMoE-1B-7B-0924:
num_experts 64, num_experts_per_tok 8), at a width a 2-core CPU gets through.

The switch is the layer's own `Experts.grouped` (True: torch._grouped_mm, "padded": three bmm
over a zero-padded (experts, capacity, .) block, False: the split per-expert loop), so whatever
nn/moe.py does for each shows up here; the outputs must agree before timing. On the CPU the
layer's default (grouped=None) takes "padded" in eager mode (nn/moe.py: torch 2.13's CPU
_grouped_mm is a loop over groups)."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from .timing import interleave


def _layer(d_model: int, hidden: int, device: str, dtype: torch.dtype):
    from ..model_config import MoEConfig
    from ..nn.moe import MoE

    torch.manual_seed(0)
    layer = MoE(d_model, MoEConfig(n_experts=64, top_k=8, hidden=hidden))
    for m in layer.modules():
        if m is not layer and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return layer.to(device=device, dtype=dtype)


def suite(run) -> list[dict]:
    # 1024 tokens (8192 token-slots, ~128 per expert): each expert's GEMM is big enough that the
    # loop runs near the GEMM ceiling, so grouping can only trim its overhead; 32 tokens (~4 slots
    # per expert, a decode batch): the loop's per-expert launches and host reads dominate
    d, f = (128, 64) if run.quick else (512, 256)
    counts = (64,) if run.quick else (32, 1024)
    rows = []
    for n, dt_name in ((n, dt) for n in counts for dt in run.dtypes):
        dtype = getattr(torch, dt_name)
        layer = _layer(d, f, run.device, dtype)
        if not hasattr(layer.experts, "grouped"):
            run.log("  moe: nn/moe.py has no `grouped` switch; skipped")
            return rows
        x = torch.randn(n, d, device=run.device, dtype=dtype)

        def fwd(grouped: bool, grad: bool):
            layer.experts.grouped = grouped
            xi = x.detach().requires_grad_(grad)
            with nullcontext() if grad else torch.no_grad():
                y = layer(xi)
                if grad:
                    y.float().square().mean().backward()
            return y

        paths = {"grouped": True, "padded": "padded", "loop": False}
        with torch.no_grad():
            loop = fwd(False, False).float()
            diff = {}
            for name in ("grouped", "padded"):
                try:
                    diff[name] = float((fwd(paths[name], False).float() - loop).abs().max())
                except (RuntimeError, NotImplementedError) as e:  # grouped_mm missing for this dtype/device
                    run.log(f"  moe {dt_name}: {name} path unavailable ({e}); skipped")
                    del paths[name]
        for mode, grad in (("forward", False), ("forward+backward", True)):
            if grad and run.quick and dt_name != "float32":
                continue
            t = interleave({name: lambda g=grad, p=p: fwd(p, g) for name, p in paths.items()},
                           run.gate, run.device, warmup=1, repeats=run.repeats)
            rows.append(dict(suite="moe", case=f"{n} tokens, d {d}, F {f}, {dt_name}, {mode}", dtype=dt_name, unit="ms",
                             values={name: 1e3 * t.median(name) for name in paths},
                             speedup={f"{name} vs loop": t.ratio(name, "loop") for name in paths if name != "loop"},
                             max_abs_diff=diff, timing=t.summary()))
            run.log(f"  moe {dt_name} {mode}: " + ", ".join(f"{k} {v:.2f}x" for k, v in rows[-1]["speedup"].items()))
        layer.experts.grouped = None
    return rows
