"""scale-vs-architecture: GPT-2-, LLaMA- and DeepSeek-style models at three sizes, equal tokens.

At each size the three architectures are matched in active parameters (architectures._matched:
the width whose active parameters come closest to the LLaMA-style model's at that size), and
every run sees the same tokens. The question is how many steps of size one architecture
change is worth: the loss gained by the best architecture over GPT-2's at a fixed size,
divided by the loss gained per size step within one architecture.
"""

from __future__ import annotations

import statistics
from typing import Any

from . import _runs
from .architectures import PRESETS, _matched
from .core import Claim, Context, Outcome


def worth_in_size_steps(loss: dict[str, list[float]]) -> tuple[float, float, float]:
    """(architecture gain, gain per size step, their ratio) from loss[arch][size index]."""
    n = len(next(iter(loss.values())))
    per_step = statistics.fmean((v[0] - v[-1]) / (n - 1) for v in loss.values())
    arch = statistics.fmean(loss["gpt2"][i] - min(v[i] for v in loss.values()) for i in range(n))
    return arch, per_step, (arch / per_step if per_step > 0 else float("inf"))


def verdict_of(worth: float) -> tuple[str, str]:
    rule = ("worth = (GPT-2's loss minus the best architecture's, averaged over sizes) / (loss gained per size step, "
            "averaged over architectures); confirmed ('scale matters more') when worth < 0.8 size steps, not confirmed "
            "when worth > 1.25, mixed between (one seed per point: differences near 1 step are within noise)")
    if worth < 0.8:
        return "confirmed", rule
    if worth > 1.25:
        return "not confirmed", rule
    return "mixed", rule


def _run(ctx: Context) -> Outcome:
    import archlab

    widths = ctx.pick((48, 64), (64, 96, 128), (128, 256, 512))
    layers = 4  # DeepSeek-V3 keeps 3 dense layers first: 4 is the least with an MoE layer
    seq = ctx.pick(64, 128, 256)
    options = dict(steps=ctx.pick(8, 150, 2000), batch=ctx.pick(4, 16, 32), seq_len=seq, lr=2e-3,
                   eval_every=ctx.pick(8, 150, 500), eval_tokens=ctx.pick(1024, 16384, 65536), dtype="float32")
    loss: dict[str, list[float]] = {p: [] for p in PRESETS}
    params: dict[str, list[int]] = {p: [] for p in PRESETS}
    flops: dict[str, list[float]] = {p: [] for p in PRESETS}
    for d in widths:
        target = archlab.analyze(_runs.llama_tiny(d, layers, 4, seq)).active_params
        for p in PRESETS:
            cfg = _matched(p, target, layers).replace(max_seq_len=max(seq, 256))
            a = archlab.analyze(cfg)
            ctx.say(f"{p} at ~{target / 1e6:.2f}M active (d_model {cfg.d_model}): {options['steps']} steps")
            r = _runs.train_run(ctx, cfg, f"{p}-d{d}", ctx.seed, **options)
            loss[p].append(r["val_loss"])
            params[p].append(a.active_params)
            flops[p].append(a.flops_per_token(seq))
    arch, per_step, worth = worth_in_size_steps(loss)
    verdict, rule = verdict_of(worth)
    best = min(PRESETS, key=lambda p: statistics.fmean(loss[p]))
    summary = (f"Over {len(widths)} sizes at equal tokens, one size step (about "
               f"{(params['llama-3-8b'][-1] / params['llama-3-8b'][0]) ** (1 / (len(widths) - 1)):.1f}x the parameters) "
               f"lowers the loss by {per_step:.3f} on average, the best architecture ({best}) beats GPT-2's by {arch:.3f} "
               f"at equal size: an architecture change is worth {worth:.2f} size steps.")
    measurements: dict[str, Any] = {
        "widths": list(widths), "options": options, "seed": ctx.seed, "final_val_loss": loss, "active_params": params,
        "flops_per_token": flops, "architecture_gain": arch, "gain_per_size_step": per_step, "worth_in_size_steps": worth,
    }

    def plot(fig) -> None:
        ax = fig.add_subplot(1, 1, 1)
        for p in PRESETS:
            ax.plot(params[p], loss[p], "o-", label=p)
        ax.set_xscale("log")
        ax.set_xlabel("active parameters")
        ax.set_ylabel(f"validation loss after {options['steps']} steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

    notes = ["Scaling-law studies (Kaplan et al. 2020, Hoffmann et al. 2022) fit many sizes and budgets; three sizes, one "
             "seed and a fixed token budget per point only say which effect is larger here, at sizes where short "
             "training favours small models."]
    return Outcome(verdict, rule, summary, measurements, plot, notes)


CLAIM = Claim(
    name="scale-vs-architecture",
    statement="Scale matters more than architecture: a step in model size is worth more than the changes from GPT-2 "
              "to LLaMA or DeepSeek",
    source="Kaplan et al. 2020 (scaling laws: performance depends weakly on shape); Hoffmann et al. 2022 (Chinchilla)",
    run=_run,
    needs_training=True,
)
