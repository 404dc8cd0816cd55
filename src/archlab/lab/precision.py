"""bf16 mixed precision: the same loss as fp32, faster.

Kalamkar et al. 2019 ("A Study of BFLOAT16 for Deep Learning Training") train with bfloat16
activations and float32 master weights and match float32's accuracy without loss scaling;
Micikevicius et al. 2018 ("Mixed Precision Training") set out the recipe (float32 master
weights, low-precision compute). archlab.train's dtype="bfloat16" is that recipe: torch
autocast over float32 weights and AdamW state. The speed half of the claim is a property of
hardware with fast bfloat16 units (tensor cores, AMX); a CPU without them emulates it.
"""

from __future__ import annotations

import statistics
from typing import Any

from .core import Claim, Context, Outcome, spread
from ._runs import all_finite, finals, llama_tiny, plot_band, train_run

# bf16 must be at least this much faster to count as "a higher throughput" (10%: past timing noise)
SPEEDUP_AT = 1.1
# a loss gap below this (nats) is a tie even when the seeds happen to agree more closely:
# bf16's rounding alone moves a tiny model's loss by about this much
LOSS_TOLERANCE = 0.01


def verdict(fp32: list[float], bf16: list[float], speedup: float) -> tuple[str, str, dict[str, float]]:
    """(verdict, rule, the deciding numbers) from final validation losses per seed and bf16's
    tokens/s over fp32's."""
    rule = (f"confirmed when bf16's mean validation loss is within max(seed spread of either, {LOSS_TOLERANCE} nats) "
            f"of fp32's (or better) AND bf16's tokens/s is >= {SPEEDUP_AT:g}x fp32's; not confirmed when bf16 is slower "
            "(ratio < 1) or its loss is worse by more than that margin; mixed otherwise (a tie in loss at a speed-up "
            f"between 1 and {SPEEDUP_AT:g}x, or one seed per dtype: no spread to judge the loss by)")
    gap = statistics.fmean(bf16) - statistics.fmean(fp32)  # > 0: bf16 worse
    margin = max(spread(fp32), spread(bf16), LOSS_TOLERANCE)
    numbers = {"loss_gap": gap, "margin": margin, "speedup": speedup}
    if min(len(fp32), len(bf16)) < 2:
        return "mixed", rule, numbers
    if gap > margin or speedup < 1.0:
        return "not confirmed", rule, numbers
    if speedup >= SPEEDUP_AT:
        return "confirmed", rule, numbers
    return "mixed", rule, numbers


def _fp8_note(device: str | None) -> str:
    import torch

    on_cuda = (device or "").startswith("cuda") or (device is None and torch.cuda.is_available())
    capable = on_cuda and torch.cuda.get_device_capability() >= (8, 9)  # Ada/Hopper: the first with fp8 tensor cores
    where = "this GPU supports fp8" if capable else "no fp8-capable GPU (compute capability >= 8.9) is present"
    return (f"fp8 skipped: {where}, and archlab.train has no fp8 dtype (float32 and bfloat16 only), "
            "so an fp8 run could not go through archlab.train as every lab run must")


def _run(ctx: Context) -> Outcome:
    d_model, n_layers, n_heads = ctx.pick((32, 1, 4), (64, 2, 4), (256, 4, 8))
    steps, batch, seq_len = ctx.pick((5, 4, 32), (200, 16, 64), (1000, 32, 256))
    seeds = [ctx.seed + i for i in range(ctx.pick(1, 2, 3))]
    eval_every, eval_tokens = ctx.pick((5, 512), (25, 8192), (100, 65536))
    cfg = llama_tiny(d_model, n_layers, n_heads, seq_len)
    opts = dict(steps=steps, batch=batch, seq_len=seq_len, lr=3e-3, eval_every=eval_every, eval_tokens=eval_tokens)

    runs: dict[str, list[dict[str, Any]]] = {"float32": [], "bfloat16": []}
    for seed in seeds:  # interleaved, so a busy neighbour slows both dtypes alike
        for dtype in runs:
            ctx.say(f"training {dtype}, seed {seed} ({steps} steps x {batch} x {seq_len} tokens)")
            runs[dtype].append(train_run(ctx, cfg, dtype, seed, dtype=dtype, **opts))

    tps = {k: statistics.fmean(r["tokens_per_s_median"] for r in v) for k, v in runs.items()}
    speedup = tps["bfloat16"] / tps["float32"] if tps["float32"] else 0.0
    loss = {k: finals(v) for k, v in runs.items()}
    result, rule, numbers = verdict(loss["float32"], loss["bfloat16"], speedup)

    from ..analysis import analyze

    measurements = {
        "model": {"base": "llama-3-8b (tiny)", "d_model": d_model, "n_layers": n_layers, "n_heads": n_heads,
                  "params": analyze(cfg).total_params},
        "training": {**opts, "seeds": seeds, "data": "shakespeare", "tokenizer": "byte"},
        "runs": runs,
        "val_loss": loss,
        "val_loss_mean": {k: statistics.fmean(v) for k, v in loss.items()},
        "tokens_per_s": tps,
        "tokens_per_s_per_seed": {k: [r["tokens_per_s_median"] for r in v] for k, v in runs.items()},
        "speedup": speedup,
        **{k: v for k, v in numbers.items() if k != "speedup"},
        "finite": all_finite(loss["float32"] + loss["bfloat16"] + list(tps.values())),
    }
    summary = (f"bf16 val loss {measurements['val_loss_mean']['bfloat16']:.4f} vs fp32 "
               f"{measurements['val_loss_mean']['float32']:.4f} (gap {numbers['loss_gap']:+.4f}, margin {numbers['margin']:.4f}) "
               f"over {len(seeds)} seed{'s' if len(seeds) > 1 else ''}; bf16 runs at {speedup:.2f}x fp32's tokens/s "
               f"({tps['bfloat16']:,.0f} vs {tps['float32']:,.0f})")

    def plot(fig) -> None:
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        for k, color in (("float32", "tab:blue"), ("bfloat16", "tab:orange")):
            plot_band(ax1, runs[k], k, color)
        ax1.set_xlabel("training tokens")
        ax1.set_ylabel("validation loss (nats/byte)")
        ax1.legend(fontsize=8)
        ax1.set_title("loss: mean over seeds, min-max band", fontsize=9)
        names = list(runs)
        for i, k in enumerate(names):
            per_seed = measurements["tokens_per_s_per_seed"][k]
            ax2.bar(i, tps[k], color=("tab:blue", "tab:orange")[i], alpha=0.6)
            ax2.scatter([i] * len(per_seed), per_seed, color="k", s=12, zorder=3)
        ax2.set_xticks(range(len(names)), names)
        ax2.set_ylabel("training tokens/s (median per step)")
        ax2.set_title(f"throughput: bf16 = {speedup:.2f}x fp32", fontsize=9)

    notes = [
        "On a CPU without native bfloat16 units, autocast emulates bf16 matmuls and adds casts, so bf16 is "
        "usually slower than fp32 here; the published speed-ups come from GPU tensor cores (and bandwidth) "
        "at model sizes where matmuls dominate. Run --budget large on a GPU to test the speed half.",
        "Only the compute is bfloat16: weights, gradients and AdamW state stay float32 (the mixed-precision "
        "recipe of Micikevicius et al. 2018), so the loss halves of the two runs differ only by rounding.",
        _fp8_note(ctx.device),
    ]
    if ctx.budget == "smoke":
        notes.append("smoke budget: a handful of steps and one seed, so the verdict is mixed by the rule; it shows "
                     "the pipeline works, not the claim")
    return Outcome(result, rule, summary, measurements, plot, notes)


CLAIM = Claim(
    name="precision",
    statement="bf16 mixed-precision training matches fp32's loss at a higher throughput",
    source="Kalamkar et al. 2019, 'A Study of BFLOAT16 for Deep Learning Training'; "
           "Micikevicius et al. 2018, 'Mixed Precision Training'",
    run=_run,
    needs_training=True,
)
