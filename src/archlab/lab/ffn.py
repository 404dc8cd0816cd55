"""SwiGLU against GeGLU and the GELU MLP, at equal parameters and tokens.

Shazeer 2020 ("GLU Variants Improve Transformer", Table 1) pre-trains T5-base variants for
the same steps with the GLU variants' hidden width cut to 2/3 of the MLP's (d_ff 2048 vs
3072), so the three-matrix GLU layer holds as many parameters as the two-matrix MLP;
SwiGLU and GeGLU reach the lowest log-perplexity (1.944 and 1.942 vs FFN_GELU's 1.983 at
65,536 steps). PaLM (Chowdhery et al. 2022, section 2) and LLaMA (Touvron et al. 2023,
section 2.2) adopted SwiGLU on that evidence.
"""

from __future__ import annotations

import statistics
from typing import Any

from .core import Claim, Context, Outcome, better_beyond_spread
from ._runs import all_finite, finals, llama_tiny, plot_band, train_run

VARIANTS = ("swiglu", "geglu", "gelu_mlp")
LABELS = {"swiglu": "SwiGLU", "geglu": "GeGLU", "gelu_mlp": "GELU MLP"}


def widths(d_model: int) -> tuple[int, int]:
    """(MLP hidden, GLU hidden): the MLP about 4 x d_model, the GLUs exactly 2/3 of it, so that
    2 * d * mlp == 3 * d * glu (no biases) and the FFN parameter counts are equal."""
    k = round(4 * d_model / 3)
    return 3 * k, 2 * k


def ffn_configs(d_model: int) -> dict[str, Any]:
    import archlab

    mlp, glu = widths(d_model)
    return {
        "swiglu": archlab.FFNConfig(hidden=glu, kind="glu", activation="silu"),
        "geglu": archlab.FFNConfig(hidden=glu, kind="glu", activation="gelu"),
        "gelu_mlp": archlab.FFNConfig(hidden=mlp, kind="mlp", activation="gelu"),
    }


def verdict(loss: dict[str, list[float]]) -> tuple[str, str, dict[str, str]]:
    """The deciding comparison is SwiGLU against the GELU MLP; SwiGLU against GeGLU and GeGLU
    against the MLP are reported by the same rule."""
    pairs = {
        "swiglu_vs_gelu_mlp": better_beyond_spread(loss["swiglu"], loss["gelu_mlp"]),
        "swiglu_vs_geglu": better_beyond_spread(loss["swiglu"], loss["geglu"]),
        "geglu_vs_gelu_mlp": better_beyond_spread(loss["geglu"], loss["gelu_mlp"]),
    }
    result, base_rule = pairs["swiglu_vs_gelu_mlp"]
    rule = ("A = SwiGLU, B = the GELU MLP, on final validation loss: " + base_rule +
            ". SwiGLU vs GeGLU and GeGLU vs the GELU MLP are reported by the same rule but do not decide")
    return result, rule, {k: v[0] for k, v in pairs.items()}


def _run(ctx: Context) -> Outcome:
    from ..analysis import analyze

    d_model, n_layers, n_heads = ctx.pick((32, 1, 4), (64, 2, 4), (256, 4, 8))
    steps, batch, seq_len = ctx.pick((4, 4, 32), (200, 16, 64), (2000, 32, 256))
    seeds = [ctx.seed + i for i in range(ctx.pick(2, 3, 3))]
    eval_every, eval_tokens = ctx.pick((2, 512), (25, 8192), (100, 65536))
    base = llama_tiny(d_model, n_layers, n_heads, seq_len)
    cfgs = {k: base.replace(ffn=f) for k, f in ffn_configs(d_model).items()}
    params = {k: {"total": analyze(c).total_params, "ffn_per_layer": analyze(c).layers[0].ffn_params,
                  "ffn_hidden": c.resolved_ffn.hidden} for k, c in cfgs.items()}
    opts = dict(steps=steps, batch=batch, seq_len=seq_len, lr=3e-3, eval_every=eval_every, eval_tokens=eval_tokens,
                dtype="float32")

    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in VARIANTS}
    for seed in seeds:
        for k in VARIANTS:
            ctx.say(f"training {LABELS[k]}, seed {seed} ({steps} steps x {batch} x {seq_len} tokens)")
            runs[k].append(train_run(ctx, cfgs[k], k, seed, **opts))

    loss = {k: finals(v) for k, v in runs.items()}
    mean = {k: statistics.fmean(v) for k, v in loss.items()}
    result, rule, pairwise = verdict(loss)
    measurements = {
        "model": {"base": "llama-3-8b (tiny)", "d_model": d_model, "n_layers": n_layers, "n_heads": n_heads},
        "params": params,
        "params_equal": len({p["total"] for p in params.values()}) == 1,
        "training": {**opts, "seeds": seeds, "data": "shakespeare", "tokenizer": "byte", "tokens": runs["swiglu"][0]["tokens"]},
        "runs": runs,
        "val_loss": loss,
        "val_loss_mean": mean,
        "pairwise": pairwise,
        "swiglu_minus_gelu_mlp": mean["swiglu"] - mean["gelu_mlp"],
        "swiglu_minus_geglu": mean["swiglu"] - mean["geglu"],
        "finite": all_finite([x for v in loss.values() for x in v]),
    }
    summary = (f"after {measurements['training']['tokens']:,} tokens x {len(seeds)} seeds, val loss SwiGLU "
               f"{mean['swiglu']:.4f}, GeGLU {mean['geglu']:.4f}, GELU MLP {mean['gelu_mlp']:.4f} "
               f"(SwiGLU - MLP {measurements['swiglu_minus_gelu_mlp']:+.4f}; SwiGLU vs GeGLU: {pairwise['swiglu_vs_geglu']}) "
               f"at {params['swiglu']['total']:,} parameters each")

    def plot(fig) -> None:
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        colors = {"swiglu": "tab:blue", "geglu": "tab:green", "gelu_mlp": "tab:red"}
        for k in VARIANTS:
            plot_band(ax1, runs[k], LABELS[k], colors[k])
        ax1.set_xlabel("training tokens")
        ax1.set_ylabel("validation loss (nats/byte)")
        ax1.set_title("mean over seeds, min-max band", fontsize=9)
        ax1.legend(fontsize=8)
        for i, k in enumerate(VARIANTS):
            ax2.scatter([i] * len(loss[k]), loss[k], color=colors[k], s=18, alpha=0.8)
            ax2.hlines(mean[k], i - 0.2, i + 0.2, color=colors[k])
        ax2.set_xticks(range(len(VARIANTS)), [LABELS[k] for k in VARIANTS])
        ax2.set_xlim(-0.5, len(VARIANTS) - 0.5)
        ax2.set_ylabel("final validation loss, per seed (line: mean)")
        ax2.set_title(f"{params['swiglu']['total']:,} parameters each", fontsize=9)

    notes = [
        f"FFN widths: GELU MLP {params['gelu_mlp']['ffn_hidden']}, GLUs {params['swiglu']['ffn_hidden']} (2/3): "
        f"{params['gelu_mlp']['ffn_per_layer']:,} vs {params['swiglu']['ffn_per_layer']:,} FFN parameters per layer "
        "(archlab.analyze).",
        "Shazeer's gaps are about 0.04 in log-perplexity after 524K steps of a 220M-parameter model; a "
        "tiny byte-level model trained for minutes sits far from convergence, where the ranking can differ "
        "and the seed spread can swallow a gap that size.",
        "Shazeer found GeGLU and SwiGLU within noise of each other (1.942 vs 1.944); the claim's "
        "'beats GeGLU' half is the weaker one, so it is reported but does not decide the verdict.",
    ]
    if ctx.budget == "smoke":
        notes.append("smoke budget: a handful of steps; the verdict shows the pipeline works, not the claim")
    return Outcome(result, rule, summary, measurements, plot, notes)


CLAIM = Claim(
    name="ffn",
    statement="SwiGLU beats GeGLU and the GELU MLP at equal parameters",
    source="Shazeer 2020, 'GLU Variants Improve Transformer', Table 1; adopted by PaLM (Chowdhery et al. 2022) "
           "and LLaMA (Touvron et al. 2023)",
    run=_run,
    needs_training=True,
)
