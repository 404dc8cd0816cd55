"""The MoE layer, grouped expert GEMM against the per-expert loop, forward and forward+backward,
at the issue's shape: 64 experts, top-8 (OLMoE's routing, config.json of allenai/OLMoE-1B-7B-0924:
num_experts 64, num_experts_per_tok 8), at a width a 2-core CPU gets through.

The switch is the layer's own `Experts.grouped` (True: grouped, False: the split loop), so
whatever nn/moe.py does for either shows up here; the two outputs must agree before timing."""

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
    d, f, n = (128, 64, 64) if run.quick else (512, 256, 1024)
    rows = []
    for dt_name in run.dtypes:
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

        try:
            with torch.no_grad():
                diff = float((fwd(True, False).float() - fwd(False, False).float()).abs().max())
        except (RuntimeError, NotImplementedError) as e:  # grouped_mm missing for this dtype/device
            run.log(f"  moe {dt_name}: grouped path unavailable ({e}); skipped")
            continue
        for mode, grad in (("forward", False), ("forward+backward", True)):
            if grad and run.quick and dt_name != "float32":
                continue
            t = interleave({"grouped": lambda g=grad: fwd(True, g), "loop": lambda g=grad: fwd(False, g)},
                           run.gate, run.device, warmup=1, repeats=run.repeats)
            rows.append(dict(suite="moe", case=f"{n} tokens, d {d}, F {f}, {mode}", dtype=dt_name, unit="ms",
                             values={"grouped": 1e3 * t.median("grouped"), "loop": 1e3 * t.median("loop")},
                             speedup={"grouped vs loop": t.ratio("grouped", "loop")},
                             max_abs_diff=diff, timing=t.summary()))
            run.log(f"  moe {dt_name} {mode}: grouped {rows[-1]['speedup']['grouped vs loop']:.2f}x the loop")
        layer.experts.grouped = None
    return rows
