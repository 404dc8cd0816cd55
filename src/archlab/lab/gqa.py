"""Grouped-query attention: a smaller KV cache and faster decoding for little quality, and
multi-query attention as the extreme.

Shazeer 2019 ("Fast Transformer Decoding: One Write-Head is All You Need") shares one key/value
head among all query heads (MQA): the cache shrinks by n_heads and incremental decoding,
bound by loading that cache, speeds up, at a small quality cost. Ainslie et al. 2023 ("GQA:
Training Generalized Multi-Query Transformer Models from Multi-Head Checkpoints", Table 1 and
Figure 3) share each key/value head within a group of query heads: GQA-8 comes close to MHA's
quality at close to MQA's decoding speed. The cache bytes follow from the shapes; the speed
follows from memory bandwidth, which a tiny model on a CPU does not run short of.
"""

from __future__ import annotations

import statistics
from typing import Any

from .core import Claim, Context, Outcome, median_time, spread
from ._runs import all_finite, finals, llama_tiny, train_run

# a loss gap this small (nats) is "minimal quality loss" even when the seeds agree more closely
LOSS_TOLERANCE = 0.02
# GQA must decode at least this much faster than MHA to count as a speed-up (past timing noise)
DECODE_SPEEDUP_AT = 1.05
PROMPT = "ROMEO:\n"


def variants(n_heads: int) -> dict[str, int]:
    """name -> n_kv_heads: MHA, GQA at two group sizes, MQA."""
    out = {"mha": n_heads, f"gqa{n_heads // 2}": n_heads // 2, f"gqa{n_heads // 4}": n_heads // 4, "mqa": 1}
    if len(set(out.values())) < 4:
        raise ValueError(f"n_heads={n_heads}: needs n_heads >= 8 for two GQA group sizes between MHA and MQA")
    return out


def equal_params(base, kv_heads: dict[str, int]) -> dict[str, Any]:
    """One config per variant, each FFN widened by what its fewer K/V projections saved, so
    every variant holds (to within one FFN unit per layer) as many parameters as MHA."""
    from ..analysis import analyze

    def total(cfg) -> int:
        return analyze(cfg).total_params

    hidden = base.resolved_ffn.hidden
    mha = base.replace(attention={"n_kv_heads": kv_heads["mha"]})
    target = total(mha)
    out = {}
    for name, kv in kv_heads.items():
        cfg = mha.replace(attention={"n_kv_heads": kv}, ffn={"hidden": hidden, "mult": None})
        per_unit = total(cfg.replace(ffn={"hidden": hidden + 1})) - total(cfg)
        cfg = cfg.replace(ffn={"hidden": hidden + round((target - total(cfg)) / per_unit)})
        out[name] = cfg
    return out


def verdict(loss: dict[str, list[float]], cache_ratio: dict[str, float], decode_speedup: dict[str, dict[str, float]],
            kv_heads: dict[str, int]) -> tuple[str, str, dict[str, Any]]:
    """From final validation losses per seed, measured cache bytes per token of MHA over each
    variant's, and each variant's decode tokens/s over MHA's per batch size."""
    rule = (f"for each GQA variant: quality holds when its mean validation loss is within max(seed spread of it or "
            f"MHA, {LOSS_TOLERANCE} nats) of MHA's (or better); the cache holds when MHA's measured cache bytes per "
            f"token are n_heads/n_kv times its own; decoding speeds up when its tokens/s is >= {DECODE_SPEEDUP_AT:g}x "
            "MHA's at every batch size measured. Confirmed when all three hold for every GQA variant; not confirmed "
            "when quality or the cache fails for any; mixed otherwise (decoding not faster, or one seed: no spread). "
            "MQA is measured and reported, and does not decide")
    n_heads = kv_heads["mha"]
    checks: dict[str, Any] = {}
    for name, kv in kv_heads.items():
        if not name.startswith("gqa"):
            continue
        gap = statistics.fmean(loss[name]) - statistics.fmean(loss["mha"])
        margin = max(spread(loss[name]), spread(loss["mha"]), LOSS_TOLERANCE)
        checks[name] = {
            "loss_gap": gap, "margin": margin, "quality": gap <= margin,
            "cache": abs(cache_ratio[name] - n_heads / kv) <= 1e-9 * n_heads,
            "decode": all(s >= DECODE_SPEEDUP_AT for s in decode_speedup[name].values()),
        }
    one_seed = min(len(v) for v in loss.values()) < 2
    if not all(c["cache"] for c in checks.values()) or (not one_seed and not all(c["quality"] for c in checks.values())):
        return "not confirmed", rule, checks
    if not one_seed and all(c["quality"] and c["decode"] for c in checks.values()):
        return "confirmed", rule, checks
    return "mixed", rule, checks


def _decode_speed(ctx: Context, run_out: str, batch: int, new_tokens: int, repeats: int) -> dict[str, float]:
    """Greedy decoding with archlab.generate on the trained model: tokens/s over the batch."""
    import archlab
    import torch

    model = archlab.load(run_out, device=ctx.device).eval()
    prompt = archlab.load_tokenizer(run_out).encode(PROMPT)
    made = len(archlab.generate(model, [prompt] * batch, max_new_tokens=new_tokens)[0])
    device = model.tok_emb.weight.device
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    seconds = median_time(lambda: archlab.generate(model, [prompt] * batch, max_new_tokens=new_tokens), repeats, 1, sync)
    return {"tokens_per_s": batch * made / seconds, "seconds": seconds, "new_tokens": made}


def _run(ctx: Context) -> Outcome:
    from ..analysis import analyze

    d_model, n_layers, n_heads = ctx.pick((32, 1, 8), (64, 2, 8), (256, 4, 8))
    steps, batch, seq_len = ctx.pick((4, 4, 32), (200, 16, 64), (2000, 32, 256))
    seeds = [ctx.seed + i for i in range(ctx.pick(1, 2, 3))]
    eval_every, eval_tokens = ctx.pick((4, 512), (25, 8192), (100, 65536))
    new_tokens, repeats, batches = ctx.pick((8, 2, (1, 4)), (64, 5, (1, 8)), (256, 5, (1, 16)))
    kv_heads = variants(n_heads)
    # room for the prompt and the decoded tokens (RoPE: the context can exceed the training length)
    context = max(seq_len, len(PROMPT) + new_tokens)
    cfgs = equal_params(llama_tiny(d_model, n_layers, n_heads, context), kv_heads)
    opts = dict(steps=steps, batch=batch, seq_len=seq_len, lr=3e-3, eval_every=eval_every, eval_tokens=eval_tokens,
                dtype="float32")

    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kv_heads}
    for seed in seeds:
        for name in kv_heads:
            ctx.say(f"training {name} (n_kv_heads={kv_heads[name]}), seed {seed} ({steps} steps x {batch} x {seq_len} tokens)")
            runs[name].append(train_run(ctx, cfgs[name], name, seed, **opts))

    import archlab

    cache, decode = {}, {}
    for name, cfg in cfgs.items():
        a = analyze(cfg)
        out = runs[name][0]["out"]
        model = archlab.load(out, device=ctx.device)
        measured = model.new_cache(1, context).nbytes / context  # float32, as the trained weights
        del model
        cache[name] = {"measured_float32": measured, "analyze_float32": a.kv_cache_bytes_per_token("float32"),
                       "analyze_bfloat16": a.kv_cache_bytes_per_token("bfloat16")}
        ctx.say(f"decoding with {name}: {new_tokens} tokens at batch {', '.join(map(str, batches))}, median of {repeats}")
        decode[name] = {str(b): _decode_speed(ctx, out, b, new_tokens, repeats) for b in batches}

    loss = {k: finals(v) for k, v in runs.items()}
    mean = {k: statistics.fmean(v) for k, v in loss.items()}
    cache_ratio = {k: cache["mha"]["measured_float32"] / c["measured_float32"] for k, c in cache.items()}
    speedup = {k: {b: d[b]["tokens_per_s"] / decode["mha"][b]["tokens_per_s"] for b in d} for k, d in decode.items()}
    result, rule, checks = verdict(loss, cache_ratio, speedup, kv_heads)
    params = {k: {"total": analyze(c).total_params, "n_kv_heads": kv_heads[k], "ffn_hidden": c.resolved_ffn.hidden}
              for k, c in cfgs.items()}
    measurements = {
        "model": {"base": "llama-3-8b (tiny)", "d_model": d_model, "n_layers": n_layers, "n_heads": n_heads,
                  "head_dim": cfgs["mha"].resolved_attention.head_dim, "context": context},
        "params": params,
        "training": {**opts, "seeds": seeds, "data": "shakespeare", "tokenizer": "byte", "tokens": runs["mha"][0]["tokens"]},
        "runs": runs,
        "val_loss": loss,
        "val_loss_mean": mean,
        "kv_cache_bytes_per_token": cache,
        "cache_ratio_vs_mha": cache_ratio,
        "decode": {"new_tokens": new_tokens, "repeats": repeats, "batches": list(batches), "by_variant": decode},
        "decode_speedup_vs_mha": speedup,
        "checks": checks,
        "finite": all_finite([x for v in loss.values() for x in v] +
                             [d[b]["tokens_per_s"] for d in decode.values() for b in d]),
    }
    gqas = [k for k in kv_heads if k.startswith("gqa")]
    b1, bn = str(batches[0]), str(batches[-1])
    summary = (
        "; ".join(f"{k.upper()} loss {mean[k] - mean['mha']:+.4f} vs MHA (margin {checks[k]['margin']:.4f}), cache "
                  f"{cache_ratio[k]:.0f}x smaller, decode {speedup[k][b1]:.2f}x/{speedup[k][bn]:.2f}x at batch {b1}/{bn}"
                  for k in gqas)
        + f"; MQA loss {mean['mqa'] - mean['mha']:+.4f}, cache {cache_ratio['mqa']:.0f}x smaller, decode "
        f"{speedup['mqa'][b1]:.2f}x/{speedup['mqa'][bn]:.2f}x ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})"
    )

    def plot(fig) -> None:
        names = list(kv_heads)
        labels = [f"{k.upper()}\nkv={kv_heads[k]}" for k in names]
        ax1, ax2, ax3 = fig.add_subplot(1, 3, 1), fig.add_subplot(1, 3, 2), fig.add_subplot(1, 3, 3)
        for i, k in enumerate(names):
            ax1.scatter([i] * len(loss[k]), loss[k], s=18, alpha=0.8)
            ax1.hlines(mean[k], i - 0.2, i + 0.2, color="k", lw=1)
        ax1.set_xticks(range(len(names)), labels, fontsize=7)
        ax1.set_xlim(-0.5, len(names) - 0.5)
        ax1.set_ylabel("final validation loss (per seed; line: mean)", fontsize=8)
        ax2.bar(range(len(names)), [cache[k]["measured_float32"] for k in names], color="tab:purple", alpha=0.6,
                label="new_cache nbytes")
        ax2.scatter(range(len(names)), [cache[k]["analyze_float32"] for k in names], color="k", marker="_", s=200,
                    label="analyze")
        ax2.set_xticks(range(len(names)), labels, fontsize=7)
        ax2.set_ylabel("KV cache bytes per token (float32)", fontsize=8)
        ax2.legend(fontsize=7)
        width = 0.8 / len(batches)
        for j, b in enumerate(batches):
            ax3.bar([i + (j - (len(batches) - 1) / 2) * width for i in range(len(names))],
                    [decode[k][str(b)]["tokens_per_s"] for k in names], width, label=f"batch {b}")
        ax3.set_xticks(range(len(names)), labels, fontsize=7)
        ax3.set_ylabel(f"decode tokens/s ({new_tokens} new, median of {repeats})", fontsize=8)
        ax3.legend(fontsize=7)

    notes = [
        "Parameters (archlab.analyze): " + ", ".join(f"{k.upper()} {p['total']:,} (FFN {p['ffn_hidden']})" for k, p in params.items())
        + ": fewer K/V heads save projection weights, given back as FFN width.",
        "Decoding speed: GQA's speed-up comes from reading a smaller cache from memory at every step, which "
        "matters when the cache is large against the weights and memory bandwidth is the limit (big models, "
        "long contexts, big batches on accelerators). A tiny model on a CPU is bound by per-step overhead, "
        "so no speed-up is expected here, and the rule then says mixed: the cache half and the quality half "
        "are what this scale can test.",
        "Ainslie et al. uptrain GQA from an MHA checkpoint (5% of pre-training); here every variant trains "
        "from scratch for the same tokens, which compares the architectures rather than the conversion.",
    ]
    if ctx.budget == "smoke":
        notes.append("smoke budget: a handful of steps and one seed, so the verdict is mixed at best; it shows "
                     "the pipeline works, not the claim")
    return Outcome(result, rule, summary, measurements, plot, notes)


CLAIM = Claim(
    name="gqa",
    statement="GQA shrinks the KV cache and speeds up decoding with minimal quality loss compared with MHA; "
              "MQA goes further at some quality cost",
    source="Ainslie et al. 2023, 'GQA: Training Generalized Multi-Query Transformer Models from Multi-Head "
           "Checkpoints' (Table 1, Figure 3); Shazeer 2019, 'Fast Transformer Decoding: One Write-Head is All You Need'",
    run=_run,
    needs_training=True,
)
