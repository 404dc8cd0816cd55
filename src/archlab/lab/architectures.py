"""architectures: the comparison's three columns, GPT-2, LLaMA and DeepSeek (MLA + MoE),
trained side by side at equal active parameters and equal tokens on Shakespeare.

Each architecture is its preset's tiny version, with the width chosen (in steps of 16) so
that its active parameters per token come closest to the LLaMA-style model's; then every
model trains with the same data, batch, schedule and seeds through archlab.train. Measured:
validation loss (curves and final), training tokens/s, KV cache per token, and a sample.
"""

from __future__ import annotations

import statistics
from typing import Any

from .core import Claim, Context, Outcome, better_beyond_spread, spread

PRESETS = ("gpt2", "llama-3-8b", "deepseek-v3")


def _matched(preset: str, target: int, layers: int):
    """The tiny config of `preset` whose active parameters are closest to `target`."""
    import archlab

    best = None
    for d in range(32, 1025, 16):
        cfg = archlab.tiny(preset, d_model=d, n_layers=layers, n_heads=4, vocab_size=256)
        gap = abs(archlab.analyze(cfg).active_params - target)
        if best is None or gap < best[0]:
            best = (gap, cfg)
    return best[1]


def _run(ctx: Context) -> Outcome:
    import archlab

    layers = ctx.pick(4, 4, 8)  # DeepSeek-V3 keeps its first 3 layers dense: 4 is the least with an MoE layer
    steps = ctx.pick(12, 250, 3000)  # default: 6 runs of 1M tokens, ~8 min on 2 cores (the budget is 10)
    seeds = [ctx.seed + i for i in range(ctx.pick(2, 2, 3))]
    options = dict(steps=steps, batch=ctx.pick(4, 16, 32), seq_len=ctx.pick(64, 256, 256), lr=2e-3,
                   eval_every=max(1, steps // 6), eval_tokens=ctx.pick(2048, 32768, 65536), quiet=True, dtype="float32")
    target = archlab.analyze(archlab.tiny("llama-3-8b", d_model=ctx.pick(64, 128, 256), n_layers=layers, n_heads=4,
                                          vocab_size=256)).active_params
    configs = {p: _matched(p, target, layers) for p in PRESETS}
    finals: dict[str, list[float]] = {p: [] for p in PRESETS}
    curves: dict[str, list[dict[int, float]]] = {p: [] for p in PRESETS}
    speed: dict[str, list[float]] = {p: [] for p in PRESETS}
    samples: dict[str, str] = {}
    for p, cfg in configs.items():
        for seed in seeds:
            ctx.say(f"{p} (d_model {cfg.d_model}), seed {seed}: {steps} steps")
            result = archlab.train(cfg, "shakespeare", ctx.folder / "runs" / f"{p}-seed{seed}", seed=seed, **options)
            finals[p].append(result.val_loss)
            curves[p].append(dict(result.val_losses))  # step -> validation loss, step 0 included
            speed[p].append(result.tokens_per_s)
        model = archlab.load(result.out)
        tok = archlab.load_tokenizer(result.out)
        new = archlab.generate(model, tok.encode("ROMEO. "), ctx.pick(40, 160, 160), temperature=0.8, seed=ctx.seed)
        samples[p] = tok.decode(tok.encode("ROMEO. ") + new)
    analyses = {p: archlab.analyze(c) for p, c in configs.items()}

    llama_vs_gpt2 = better_beyond_spread(finals["llama-3-8b"], finals["gpt2"])
    deepseek_vs_llama = better_beyond_spread(finals["deepseek-v3"], finals["llama-3-8b"])
    verdicts = {llama_vs_gpt2[0], deepseek_vs_llama[0]}
    verdict = verdicts.pop() if len(verdicts) == 1 else "mixed"
    rule = ("two comparisons, each by the seed-spread rule (" + llama_vs_gpt2[1] + "): LLaMA vs GPT-2 and "
            "DeepSeek vs LLaMA; the verdict is theirs when they agree, mixed when they do not")
    mean = {p: statistics.fmean(v) for p, v in finals.items()}
    summary = (f"Validation loss after {steps} steps (mean of {len(seeds)} seeds, at ~{target / 1e6:.2f}M active parameters): "
               f"GPT-2 {mean['gpt2']:.3f}, LLaMA {mean['llama-3-8b']:.3f}, DeepSeek {mean['deepseek-v3']:.3f} "
               f"(spreads {spread(finals['gpt2']):.3f}, {spread(finals['llama-3-8b']):.3f}, {spread(finals['deepseek-v3']):.3f}); "
               f"LLaMA vs GPT-2: {llama_vs_gpt2[0]}, DeepSeek vs LLaMA: {deepseek_vs_llama[0]}.")
    measurements: dict[str, Any] = {
        "seeds": seeds, "steps": steps, "options": {k: v for k, v in options.items() if k != "quiet"},
        "d_model": {p: c.d_model for p, c in configs.items()},
        "total_params": {p: a.total_params for p, a in analyses.items()},
        "active_params": {p: a.active_params for p, a in analyses.items()},
        "kv_bytes_per_token_bf16": {p: a.kv_cache_bytes_per_token("bfloat16") for p, a in analyses.items()},
        "final_val_loss": finals, "val_loss_curves": {p: [{str(k): v for k, v in c.items()} for c in cs] for p, cs in curves.items()},
        "tokens_per_s": speed, "samples": samples,
        "comparisons": {"llama_vs_gpt2": llama_vs_gpt2[0], "deepseek_vs_llama": deepseek_vs_llama[0]},
    }

    def plot(fig) -> None:
        ax = fig.add_subplot(1, 2, 1)
        for p in PRESETS:
            steps_ = sorted(curves[p][0])
            mean_curve = [statistics.fmean(c[s] for c in curves[p]) for s in steps_]
            lo = [min(c[s] for c in curves[p]) for s in steps_]
            hi = [max(c[s] for c in curves[p]) for s in steps_]
            line = ax.plot(steps_, mean_curve, "o-", markersize=3, label=f"{p} ({analyses[p].active_params / 1e6:.2f}M)")[0]
            ax.fill_between(steps_, lo, hi, color=line.get_color(), alpha=0.2)
        ax.set_xlabel("step")
        ax.set_ylabel("validation loss (nats/byte)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        ax2 = fig.add_subplot(1, 2, 2)
        x = range(len(PRESETS))
        ax2.bar(x, [statistics.fmean(speed[p]) for p in PRESETS], color=["tab:blue", "tab:orange", "tab:green"])
        ax2.set_xticks(list(x), [p.split("-")[0] for p in PRESETS])
        ax2.set_ylabel("training tokens/s")
        ax2.grid(alpha=0.3, axis="y")

    notes = ["The published models differ in size, data and tokens by orders of magnitude; here only the architecture "
             "differs, at a few hundred thousand to a million parameters and a few million bytes of Shakespeare, where "
             "an MoE's extra total parameters have little data to specialise on."]
    return Outcome(verdict, rule, summary, measurements, plot, notes)


CLAIM = Claim(
    name="architectures",
    statement="Each step of the comparison improves on the last at equal active parameters and tokens: LLaMA "
              "(RMSNorm, RoPE, GQA, SwiGLU) on GPT-2, and DeepSeek (MLA, fine-grained MoE) on LLaMA",
    source="Radford et al. 2019 (GPT-2); Touvron et al. 2023 (LLaMA); DeepSeek-AI 2024 (DeepSeek-V2/V3 reports)",
    run=_run,
    needs_training=True,
)
