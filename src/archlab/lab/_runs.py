"""What the training claims share: one archlab.train run per (variant, seed) on Shakespeare
with the byte tokenizer, read back as plain numbers, and the loss-curve band they plot.
Torch is imported by archlab.train itself, on first use."""

from __future__ import annotations

import math
import statistics
from typing import Any

from .core import Context

DATA = "shakespeare"
TOKENIZER = "byte"


def llama_tiny(d_model: int, n_layers: int, n_heads: int, max_seq_len: int):
    """The tiny LLaMA-style model the training claims start from (RMSNorm, RoPE, SwiGLU, GQA
    as LLaMA 3 has it); vocab 256 is the byte tokenizer's."""
    import archlab

    return archlab.tiny("llama-3-8b", d_model=d_model, n_layers=n_layers, n_heads=n_heads, vocab_size=256,
                        max_seq_len=max_seq_len)


def train_run(ctx: Context, cfg, variant: str, seed: int, **options: Any) -> dict[str, Any]:
    """Train cfg into ctx.folder/runs/VARIANT/seed-S and return its numbers: final and per-step
    validation loss, and the median of the per-step tokens/s (the first steps' warm-up and
    a noisy neighbour move a median less than the run's mean)."""
    import archlab
    from ..training.metrics import read_metrics

    # a fresh folder: run_claim empties ctx.folder/runs before each run of a claim
    out = ctx.folder / "runs" / variant / f"seed-{seed}"
    r = archlab.train(cfg, DATA, out, tokenizer=TOKENIZER, quiet=True, seed=seed, device=ctx.device, save_every=0, **options)
    per_step = [m["tokens_per_s"] for m in read_metrics(out / "metrics.jsonl") if "tokens_per_s" in m]
    return {
        "seed": seed,
        "val_loss": r.val_loss,
        "val_losses": {int(k): v for k, v in sorted(r.val_losses.items())},
        "tokens": r.tokens,
        "tokens_per_s_median": statistics.median(per_step) if per_step else 0.0,
        "unigram": r.unigram,
        "out": str(out),
    }


def finals(runs: list[dict[str, Any]]) -> list[float]:
    return [r["val_loss"] for r in runs]


def all_finite(values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def plot_band(ax, runs: list[dict[str, Any]], label: str, color=None) -> None:
    """Validation loss against tokens: the mean over seeds, the band from min to max."""
    steps = sorted(set.intersection(*(set(r["val_losses"]) for r in runs)), key=int)
    per_step_tokens = runs[0]["tokens"] / max(int(s) for s in steps) if steps and max(int(s) for s in steps) else 0
    x = [int(s) * per_step_tokens for s in steps]
    ys = [[r["val_losses"][s] for r in runs] for s in steps]
    mean = [statistics.fmean(v) for v in ys]
    line, = ax.plot(x, mean, label=label, color=color, lw=1.4)
    ax.fill_between(x, [min(v) for v in ys], [max(v) for v in ys], color=line.get_color(), alpha=0.2, lw=0)
