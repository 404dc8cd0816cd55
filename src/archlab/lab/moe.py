"""moe: a mixture of experts against the dense model with the same active parameters.

The dense model is the tiny LLaMA-style one; the MoE model replaces every FFN (SwiGLU of
hidden F) by 8 experts of hidden F/2 with top-2 routing, so each token passes through the same
number of FFN weights (2 x F/2) and the two have equal active parameters and FLOPs per token
(the router's E x d weights aside), while the MoE holds 4x the FFN parameters. Both train on
the same tokens and seeds. Measured: parameters and FLOPs from the configs, training tokens/s,
validation loss, expert load over training, and, on validation text after training, how each
expert's tokens split across classes of bytes (a heat map: do experts specialise?).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from . import _runs
from .core import Claim, Context, Outcome, better_beyond_spread

N_EXPERTS, TOP_K = 8, 2

# classes of bytes (the byte tokenizer's tokens) an expert could specialise on
CLASSES = ("space", "newline", "punctuation", "capital", "vowel", "consonant", "digit", "other")


def byte_class(b: int) -> str:
    c = chr(b) if b < 128 else ""
    if c == " ":
        return "space"
    if c == "\n":
        return "newline"
    if c and c in ".,;:!?'\"-()[]":
        return "punctuation"
    if c.isupper():
        return "capital"
    if c and c in "aeiou":
        return "vowel"
    if c.isalpha():
        return "consonant"
    if c.isdigit():
        return "digit"
    return "other"


def moe_config(dense):
    import archlab

    hidden = dense.resolved_ffn.hidden
    moe = archlab.MoEConfig(n_experts=N_EXPERTS, top_k=TOP_K, hidden=hidden // TOP_K,
                            router=archlab.RouterConfig(norm_topk=True))
    return dense.replace(name=f"{dense.name}-moe", moe=moe, ffn=None, ffn_types=archlab.Pattern(("moe",)))


def routing_by_class(run_dir: str, tokens, n: int) -> list[list[list[int]]]:
    """For the trained MoE model: counts[layer][class][expert] of the top-1 expert chosen for
    each of the first n validation bytes."""
    import torch

    import archlab
    from ..nn.moe import Router

    model = archlab.load(run_dir)
    picks: list[torch.Tensor] = []

    def hook(module, args, output):
        picks.append(output[1][:, 0].clone())  # top-1 expert of each token (the router's first pick)

    routers = [m for m in model.modules() if isinstance(m, Router)]
    handles = [r.register_forward_hook(hook) for r in routers]
    seq = model.config.max_seq_len
    ids = torch.as_tensor(tokens[: (min(n, len(tokens)) // seq) * seq].astype("int64")).view(-1, seq)
    counts = [[[0] * N_EXPERTS for _ in CLASSES] for _ in routers]
    try:
        with torch.no_grad():
            for row in ids:
                picks.clear()
                model(row[None])
                classes = [CLASSES.index(byte_class(int(b))) for b in row]
                for layer, experts in enumerate(picks):
                    for c, e in zip(classes, experts.tolist()):
                        counts[layer][c][e] += 1
    finally:
        for h in handles:
            h.remove()
    return counts


def specialisation(counts: list[list[int]]) -> float:
    """Mutual information (bits) between a byte's class and its top-1 expert: 0 when every
    class spreads over the experts alike, up to log2(experts) when each class has its own."""
    total = sum(map(sum, counts))
    if not total:
        return 0.0
    rows = [sum(r) for r in counts]
    cols = [sum(r[e] for r in counts) for e in range(len(counts[0]))]
    mi = 0.0
    for c, r in enumerate(counts):
        for e, v in enumerate(r):
            if v:
                mi += v / total * math.log2(v * total / (rows[c] * cols[e]))
    return mi


def _run(ctx: Context) -> Outcome:
    import archlab

    d, layers, seq = ctx.pick(64, 128, 256), ctx.pick(2, 4, 8), ctx.pick(64, 256, 256)
    dense = _runs.llama_tiny(d, layers, 4, seq)
    sparse = moe_config(dense)
    seeds = [ctx.seed + i for i in range(ctx.pick(1, 2, 3))]
    options = dict(steps=ctx.pick(6, 250, 2000), batch=ctx.pick(4, 16, 32), seq_len=seq, lr=2e-3,
                   eval_every=ctx.pick(3, 50, 200), eval_tokens=ctx.pick(1024, 16384, 65536), dtype="float32")
    runs: dict[str, list[dict[str, Any]]] = {"dense": [], "moe": []}
    for seed in seeds:  # interleaved, so a busy stretch of the machine slows both alike
        for label, cfg in (("dense", dense), ("moe", sparse)):
            ctx.say(f"{label}, seed {seed}: {options['steps']} steps")
            runs[label].append(_runs.train_run(ctx, cfg, label, seed, **options))
    a_dense, a_moe = archlab.analyze(dense), archlab.analyze(sparse)

    from pathlib import Path

    from ..training.metrics import read_metrics

    load_curves = [[r["step"], r["expert_imbalance"]] for r in read_metrics(Path(runs["moe"][0]["out"]) / "metrics.jsonl")
                   if "expert_imbalance" in r]
    data = archlab.prepare_data("shakespeare")
    counts = routing_by_class(runs["moe"][0]["out"], data.val, ctx.pick(2048, 32768, 131072))
    mi = [specialisation(c) for c in counts]

    flops = (a_dense.flops_per_token(seq), a_moe.flops_per_token(seq))
    equal_compute = abs(flops[1] / flops[0] - 1) < 0.05
    quality, quality_rule = better_beyond_spread(_runs.finals(runs["moe"]), _runs.finals(runs["dense"]))
    verdict = quality if equal_compute and a_moe.total_params > a_dense.total_params else "not confirmed"
    rule = ("confirmed when the MoE model's FLOPs per token are within 5% of the dense model's, it holds more "
            "parameters, and its validation loss is lower by the seed-spread rule (" + quality_rule + "); not "
            "confirmed when the compute differs or the loss is higher by that rule; mixed otherwise")
    mean = {k: statistics.fmean(_runs.finals(v)) for k, v in runs.items()}
    speed = {k: statistics.fmean(r["tokens_per_s_median"] for r in v) for k, v in runs.items()}
    summary = (f"At {a_moe.active_params / 1e6:.2f}M active parameters ({a_moe.total_params / 1e6:.2f}M total against "
               f"{a_dense.total_params / 1e6:.2f}M dense) and {flops[1] / flops[0]:.3f}x the FLOPs per token, the MoE "
               f"reached validation loss {mean['moe']:.3f} against {mean['dense']:.3f} (mean of {len(seeds)} seed{'s' if len(seeds) > 1 else ''}) at "
               f"{speed['moe'] / speed['dense']:.2f}x the dense model's training tokens/s; class-expert mutual "
               f"information {max(mi):.3f} bits (of {math.log2(N_EXPERTS):.0f}).")
    measurements: dict[str, Any] = {
        "seeds": seeds, "options": options,
        "total_params": {"dense": a_dense.total_params, "moe": a_moe.total_params},
        "active_params": {"dense": a_dense.active_params, "moe": a_moe.active_params},
        "flops_per_token": {"dense": flops[0], "moe": flops[1]},
        "final_val_loss": {k: _runs.finals(v) for k, v in runs.items()},
        "val_losses": {k: [r["val_losses"] for r in v] for k, v in runs.items()},
        "tokens_per_s": speed, "expert_imbalance_by_step": load_curves,
        "classes": list(CLASSES), "routing_counts": counts, "class_expert_mutual_information_bits": mi,
    }

    def plot(fig) -> None:
        ax = fig.add_subplot(1, 2, 1)
        _runs.plot_band(ax, runs["dense"], f"dense ({a_dense.total_params / 1e6:.2f}M)")
        _runs.plot_band(ax, runs["moe"], f"MoE {N_EXPERTS}x top-{TOP_K} ({a_moe.total_params / 1e6:.2f}M total)")
        ax.set_xlabel("training tokens")
        ax.set_ylabel("validation loss")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        ax2 = fig.add_subplot(1, 2, 2)
        last = counts[-1]
        shares = [[v / max(1, sum(row)) for v in row] for row in last]
        im = ax2.imshow(shares, cmap="viridis", aspect="auto")
        ax2.set_yticks(range(len(CLASSES)), CLASSES, fontsize=7)
        ax2.set_xticks(range(N_EXPERTS), [str(e) for e in range(N_EXPERTS)], fontsize=7)
        ax2.set_xlabel("expert (top-1), last MoE layer")
        ax2.set_title("share of each class's bytes", fontsize=8)
        fig.colorbar(im, ax=ax2, fraction=0.046)

    notes = ["Mixtral (Jiang et al. 2024, section 5) found little specialisation by topic but some by syntax; at the "
             "byte level, classes of characters are the syntax there is to specialise on.",
             "Time per token on this CPU includes the per-expert loop over sorted tokens; the FLOPs are equal by "
             "construction, the wall time need not be."]
    return Outcome(verdict, rule, summary, measurements, plot, notes)


CLAIM = Claim(
    name="moe",
    statement="A mixture of experts adds parameters without adding compute per token, and at equal active "
              "parameters and tokens reaches a lower loss than the dense model",
    source="Shazeer et al. 2017 (sparsely-gated MoE); Fedus et al. 2021 (Switch Transformer); Jiang et al. 2024 "
           "(Mixtral); DeepSeek-AI 2024 (DeepSeekMoE)",
    run=_run,
    needs_training=True,
)
