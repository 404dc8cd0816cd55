"""positions: how far past its training length each kind of position encoding carries a model.

Tiny models of one width and depth (archlab.tiny("llama-3-8b")) differ only in their positions:
learned absolute embeddings, RoPE (the preset's), ALiBi, no positions at all (NoPE), and
SmolLM3's RoPE with every 4th layer NoPE. Each is trained by archlab.train at sequence length L
on Shakespeare (bytes), then scored on the same validation tokens cut into windows of L, 2L, 4L
and 8L tokens: every token of a window is scored (Press et al. 2022's non-overlapping
evaluation), so a longer window scores the same tokens with more context. A learned-position
model cannot take a window past its table of L positions: that is recorded as "cannot", with
the model's own error, not as a number.

The trained RoPE model is then extended to 4L, first without training, by changing only its
config's RoPE at evaluation time (the weights are the same): every RopeScaling kind archlab has
(linear = position interpolation, yarn, llama3) and NTK-aware scaling, which is a change of
theta alone. Then with a short fine-tune: each scaled config trains on from the RoPE run's
weights (archlab.train(init_from=...)) at sequence length 4L, and so does the unscaled RoPE
(the control Chen et al. 2023 compare against: fine-tuning alone, no interpolation).
"""

from __future__ import annotations

import math
from typing import Any

from .core import Claim, Context, Outcome

LENGTHS = (1, 2, 4, 8)  # evaluation lengths, in multiples of the training length L
EXTEND = 4  # the factor the RoPE scalings are set to: 4L, the length the rule judges
# The rule's X: a model "extrapolates" when its loss at 4L stays within 5% of its loss at L.
# Press et al. 2022 (figure 1) show ALiBi's perplexity flat or falling past L, and sinusoidal,
# rotary and T5-bias rising; 5% of a byte-level loss (~0.1 nat) separates those cleanly.
TOLERANCE = 0.05
# A model that has not learned to use its context says nothing about positions: a unigram model
# "extrapolates" perfectly. Required: loss at L at least 20% below the unigram entropy.
LEARNED_BAR = 0.80
# NoPE or a RoPE scaling "helps" when its loss on 4L windows is more than 2% below plain RoPE's:
# the windows hold the same tokens for every model, so a paired difference this size is the models'.
HELP_MARGIN = 0.02

# (label, change to the tiny config); RoPE is the preset's own (theta 500000, as Llama 3)
VARIANTS = ("learned", "rope", "alibi", "nope", "rope+nope/4")


def _configs(ctx: Context, L: int) -> dict[str, Any]:
    import archlab

    d_model, n_heads = ctx.pick((32, 2), (128, 4), (256, 8))
    # 4 layers at every budget: SmolLM3's rule puts its NoPE layer at every 4th (layer 3 here)
    base = archlab.tiny("llama-3-8b", d_model=d_model, n_heads=n_heads, n_layers=4, vocab_size=256,
                        max_seq_len=max(LENGTHS) * L)
    return {
        # the learned table is L long, as a model trained at L would have it
        "learned": base.replace(position="learned", max_seq_len=L),
        "rope": base,
        "alibi": base.replace(position="alibi"),
        "nope": base.replace(position="none"),
        # SmolLM3 (2025): no_rope_layer_interval 4, i.e. archlab's catalog/smollm.py nope_every(4)
        "rope+nope/4": base.replace(rope_layers=archlab.Pattern.every(4, False, True)),
    }


def _scalings(rope, L: int, head_dim: int) -> dict[str, Any]:
    """The trained RoPE, extended to EXTEND x L by each fixed-frequency scaling archlab supports."""
    from dataclasses import replace

    from ..model_config import FIXED_ROPE_SCALINGS, RopeScaling

    out = {}
    for kind in FIXED_ROPE_SCALINGS:  # dynamic and longrope are not measured here
        # linear: Chen et al. 2023 (position interpolation); yarn: Peng et al. 2023, its defaults
        # beta_fast 32, beta_slow 1; llama3: Meta's Llama 3.1 config, low/high_freq_factor 1 and 4
        out[f"rope {kind} x{EXTEND}"] = replace(rope, scaling=RopeScaling(kind, factor=float(EXTEND), original_max_seq_len=L))
    # NTK-aware scaling (bloc97, 2023; Peng et al. 2023 section 3.1): theta * s^(d / (d - 2))
    d = rope.rotary_dim(head_dim)
    out[f"rope ntk x{EXTEND}"] = replace(rope, theta=rope.theta * EXTEND ** (d / (d - 2)))
    return out


def _slow_frequencies(theta: float, head_dim: int, length: int) -> int:
    """How many RoPE frequencies turn less than one full circle over `length` positions."""
    return sum(2 * math.pi * theta ** (2 * i / head_dim) > length for i in range(head_dim // 2))


def _windows(val, L: int, spans: int):
    """`spans` stretches of 8L + 1 validation tokens, evenly spread: every evaluation length cuts
    the same stretches, so every length scores the same tokens."""
    import numpy as np

    span = max(LENGTHS) * L
    starts = np.linspace(0, len(val) - span - 1, spans).astype(np.int64)
    return np.stack([np.asarray(val[s: s + span + 1], dtype=np.int64) for s in starts])


def _score(model, rows, L: int, k: int) -> dict[str, float]:
    """Loss of every token when the stretches are cut into windows of k*L: the mean over all tokens,
    and over the last L positions of the windows (the part past the training length when k > 1)."""
    import torch
    import torch.nn.functional as F

    n = k * L
    x = torch.from_numpy(rows[:, :-1]).reshape(-1, n)
    y = torch.from_numpy(rows[:, 1:]).reshape(-1, n)
    losses = []
    with torch.no_grad():
        for i in range(0, x.shape[0], max(1, 16 // k)):
            h = model(x[i: i + max(1, 16 // k)], return_hidden=True)
            logits = model.logits(h).float()
            losses.append(F.cross_entropy(logits.transpose(1, 2), y[i: i + max(1, 16 // k)], reduction="none"))
    per_pos = torch.cat(losses)  # (windows, n)
    return {"mean": float(per_pos.mean()), "last_L": float(per_pos[:, -L:].mean())}


def _evaluate(model, rows, L: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in LENGTHS:
        try:
            out[str(k)] = _score(model, rows, L, k)
        except ValueError as e:  # learned positions: the model refuses windows past its table
            if model.config.position_kind != "learned" or k * L <= model.config.max_seq_len:
                raise
            out[str(k)] = {"cannot": str(e)}
    return out


def _ratio(ev: dict[str, Any], k: int) -> float | None:
    a, b = ev["1"], ev[str(k)]
    return b["mean"] / a["mean"] if "mean" in a and "mean" in b else None


def decide(evals: dict[str, dict[str, Any]], unigram: float) -> tuple[str, str, dict[str, Any]]:
    """The verdict from the evaluations ({variant: {"1": {"mean": ..}, "4": ..}}): (verdict, rule, why)."""
    rule = (f"a model extrapolates when its mean loss on {EXTEND}L windows is at most {1 + TOLERANCE:g}x its loss on "
            f"L windows (X = {TOLERANCE:.0%}); confirmed when RoPE and ALiBi both extrapolate and learned positions "
            f"cannot go past L; not confirmed when neither extrapolates, or learned positions do go past L; mixed "
            f"when only one does, or when RoPE's or ALiBi's loss at L is not {1 - LEARNED_BAR:.0%} below the unigram "
            f"entropy (a model that has not learned to use context extrapolates trivially). NoPE and the RoPE "
            f"scalings are reported beside it: one helps when its {EXTEND}L loss is more than {HELP_MARGIN:.0%} below "
            f"plain RoPE's, and a scaling extends RoPE when its {EXTEND}L loss is within X of plain RoPE's loss at L")
    ratios = {v: _ratio(e, EXTEND) for v, e in evals.items()}
    ok = {v: r is not None and r <= 1 + TOLERANCE for v, r in ratios.items()}
    learned_stops = all("cannot" in evals["learned"][str(k)] for k in LENGTHS if k > 1)
    trained = {v: evals[v]["1"]["mean"] <= LEARNED_BAR * unigram for v in ("rope", "alibi")}
    why = {"ratios_at_4L": ratios, "extrapolates": ok, "learned_cannot_past_L": learned_stops,
           "learned_context": trained}
    if not learned_stops:
        return "not confirmed", rule, why
    if not all(trained.values()):
        return "mixed", rule, why
    if ok["rope"] and ok["alibi"]:
        return "confirmed", rule, why
    if not ok["rope"] and not ok["alibi"]:
        return "not confirmed", rule, why
    return "mixed", rule, why


def _helps(evals: dict[str, dict[str, Any]], variant: str) -> bool | None:
    a, b = evals["rope"][str(EXTEND)], evals[variant][str(EXTEND)]
    if "mean" not in a or "mean" not in b:
        return None
    return b["mean"] < (1 - HELP_MARGIN) * a["mean"]


def _extends(evals: dict[str, dict[str, Any]], variant: str) -> bool | None:
    """A scaled RoPE at 4L against the unscaled model at L, the context it was trained for."""
    a, b = evals["rope"]["1"], evals[variant][str(EXTEND)]
    return b["mean"] <= (1 + TOLERANCE) * a["mean"] if "mean" in b else None


def _run(ctx: Context) -> Outcome:
    import archlab
    from archlab.model_config import FIXED_ROPE_SCALINGS  # the kinds _scalings measures

    L = ctx.pick(64, 128, 256)
    # default: 5 runs of 350 x 16 x 128 tokens (717K each) at ~12K tokens/s on 2 CPU cores, ~6 min in all
    steps, batch = ctx.pick((15, 8), (350, 16), (3000, 32))
    spans = ctx.pick(2, 12, 32)  # stretches of 8L validation tokens scored at every length
    data = archlab.prepare_data("shakespeare")
    unigram = data.unigram_entropy("val")
    rows = _windows(data.val, L, spans)

    configs = _configs(ctx, L)
    evals: dict[str, dict[str, Any]] = {}
    train_info: dict[str, Any] = {}
    models, runs = {}, {}
    for label, cfg in configs.items():
        ctx.say(f"{label}: training {steps} steps x {batch} x {L} tokens")
        r = runs[label] = archlab.train(cfg, "shakespeare", ctx.folder / "runs" / label.replace("/", "-").replace("+", "_"),
                          tokenizer="byte", quiet=True, steps=steps, batch=batch, seq_len=L, seed=ctx.seed,
                          eval_every=steps, eval_tokens=ctx.pick(4096, 16384, 65536), save_every=0, lr=ctx.pick(3e-3, 2e-3, 1e-3))
        model = archlab.load(r.out)
        models[label] = model
        train_info[label] = {"train_loss": r.loss, "val_loss": r.val_loss, "tokens_per_s": r.tokens_per_s,
                             "max_seq_len": model.config.max_seq_len}
        ctx.say(f"{label}: evaluating at {', '.join(f'{k}L' for k in LENGTHS)}")
        evals[label] = _evaluate(model, rows, L)

    # the RoPE model's weights under other RoPE configs: nothing but the frequencies changes
    rope_model = models["rope"]
    head_dim = rope_model.config.resolved_attention.head_dim
    scaled: dict[str, dict[str, Any]] = {}
    scalings = _scalings(rope_model.config.rope, L, head_dim)
    for label, rope in scalings.items():
        ctx.say(f"{label}: evaluating the trained RoPE weights")
        m = archlab.build(rope_model.config.replace(position=rope)).eval()
        m.load_state_dict(rope_model.state_dict())
        scaled[label] = _evaluate(m, rows, L)

    # a short fine-tune at 4L from the RoPE run's weights, for each scaling and for none
    ft_steps, ft_batch = ctx.pick((3, 2), (50, 8), (500, 16))
    ft_lr = ctx.pick(3e-3, 2e-3, 1e-3) / 4  # the base run's peak over 4: adapting, not relearning
    tuned: dict[str, dict[str, Any]] = {}
    tuned_info: dict[str, Any] = {}
    ropes = {"rope (no scaling)": rope_model.config.rope, **scalings}
    for label, rope in ropes.items():
        ctx.say(f"{label}: fine-tuning {ft_steps} steps x {ft_batch} x {EXTEND * L} tokens from the RoPE run")
        slug = "ft-" + "".join(c if c.isalnum() else "-" for c in label).strip("-")
        r = archlab.train(rope_model.config.replace(position=rope), "shakespeare", ctx.folder / "runs" / slug,
                          init_from=runs["rope"].out, tokenizer="byte", quiet=True, steps=ft_steps, batch=ft_batch,
                          seq_len=EXTEND * L, seed=ctx.seed, eval_every=ft_steps, eval_tokens=ctx.pick(4096, 16384, 65536),
                          save_every=0, lr=ft_lr)
        tuned[label] = _evaluate(archlab.load(r.out), rows, L)
        tuned_info[label] = {"train_loss": r.loss, "val_loss_at_4L_before": r.val_losses.get(0), "val_loss_at_4L": r.val_loss,
                             "tokens_per_s": r.tokens_per_s}

    verdict, rule, why = decide(evals, unigram)
    helps = {v: _helps(evals, v) for v in ("nope", "rope+nope/4")}
    helps.update({v: _helps({**evals, **scaled}, v) for v in scaled})
    r = why["ratios_at_4L"]

    def fmt(v: str) -> str:
        e = {**evals, **scaled}[v]
        return f"{e['1']['mean']:.2f} -> {e[str(EXTEND)]['mean']:.2f}" if "mean" in e[str(EXTEND)] else f"{e['1']['mean']:.2f} -> cannot"

    extends = {v: _extends({**evals, **scaled}, v) for v in scaled}
    extends_tuned = {v: _extends({"rope": evals["rope"], v: e}, v) for v, e in tuned.items()}
    helped = [v for v, h in helps.items() if h]
    sc = ", ".join(f"{v.split()[1]} {scaled[v][str(EXTEND)]['mean']:.2f}" for v in scaled)
    tu = ", ".join(f"{'none' if 'no scaling' in v else v.split()[1]} {e[str(EXTEND)]['mean']:.2f}" for v, e in tuned.items())
    within = [("none" if "no scaling" in v else v.split()[1]) for v, ok in extends_tuned.items() if ok]
    summary = (f"Mean loss from L={L} to {EXTEND}L windows: RoPE {fmt('rope')} (x{r['rope']:.2f}), ALiBi {fmt('alibi')} "
               f"(x{r['alibi']:.2f}), NoPE {fmt('nope')}, RoPE+NoPE/4 {fmt('rope+nope/4')}, learned {fmt('learned')}; "
               f"RoPE scaled x{EXTEND} at {EXTEND}L without fine-tune: {sc}; after {ft_steps} fine-tune steps at {EXTEND}L: "
               f"{tu} (within {TOLERANCE:.0%} of RoPE's {evals['rope']['1']['mean']:.2f} at L: {', '.join(within) or 'none'}); "
               f"beating plain RoPE at {EXTEND}L by >{HELP_MARGIN:.0%}: {', '.join(helped) if helped else 'none'}"
               + ("" if all(why["learned_context"].values()) else
                  f" (RoPE/ALiBi loss at L not {1 - LEARNED_BAR:.0%} below the unigram {unigram:.2f}: too little training to judge)"))

    measurements: dict[str, Any] = {
        "L": L, "lengths_x_L": list(LENGTHS), "lengths_tokens": [k * L for k in LENGTHS],
        "tokens_scored_per_length": int(rows.shape[0] * max(LENGTHS) * L),
        "steps": steps, "batch": batch, "seed": ctx.seed, "unigram_entropy": unigram,
        "model": {"preset": "llama-3-8b (tiny)", "d_model": configs["rope"].d_model, "n_layers": configs["rope"].n_layers,
                  "n_heads": configs["rope"].attention.n_heads, "head_dim": head_dim, "rope_theta": configs["rope"].rope.theta},
        "training": train_info, "loss": evals, "scaled_rope_loss": scaled,
        "scaled_rope_configs": {k: repr(v) for k, v in scalings.items()},
        "rope_scaling_kinds": list(FIXED_ROPE_SCALINGS) + ["ntk (theta)"],
        "helps_at_4L": helps, "scaling_extends_to_4L": extends, "help_margin": HELP_MARGIN, "tolerance": TOLERANCE, "learned_bar": LEARNED_BAR, **why,
        "fine_tune": {"steps": ft_steps, "batch": ft_batch, "seq_len": EXTEND * L, "lr": ft_lr,
                      "tokens": ft_steps * ft_batch * EXTEND * L, "from": "the RoPE run's final weights",
                      "training": tuned_info},
        "fine_tuned_rope_loss": tuned, "fine_tuned_extends_to_4L": extends_tuned,
    }

    def plot(fig) -> None:
        fig.set_size_inches(12, 4.8)
        xs = [k * L for k in LENGTHS]
        for col, (key, title) in enumerate((("mean", "all tokens of each window"), ("last_L", "last L positions of each window\n(other tokens per length)"))):
            ax = fig.add_subplot(1, 3, col + 1)
            for group, style in ((evals, "o-"), (scaled, "s--")):
                for label, e in group.items():
                    pts = [(x, e[str(k)][key]) for x, k in zip(xs, LENGTHS) if key in e[str(k)]]
                    line, = ax.plot(*zip(*pts), style, markersize=3, linewidth=1, label=label)
                    cannot = [x for x, k in zip(xs, LENGTHS) if "cannot" in e[str(k)]]
                    if cannot:
                        y0 = pts[-1][1]
                        ax.plot(cannot, [y0] * len(cannot), "x", color=line.get_color(), markersize=6)
                        ax.annotate("cannot", (cannot[0], y0), fontsize=6, color=line.get_color(),
                                    xytext=(3, 3), textcoords="offset points")
            ax.axhline(unigram, color="gray", linewidth=0.7, linestyle=":", label="unigram entropy")
            ax.axvline(L, color="gray", linewidth=0.7)
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [f"{k}L" for k in LENGTHS])
            ax.set_xlabel(f"evaluation window (L = {L} tokens)")
            ax.set_ylabel("validation loss (nats/byte)")
            ax.set_title(title, fontsize=8)
            ax.grid(alpha=0.3)
            if col == 0:
                ax.legend(fontsize=6)
        ax = fig.add_subplot(1, 3, 3)
        names = list(tuned)
        short = ["none" if "no scaling" in v else v.split()[1] for v in names]
        before = [evals["rope"][str(EXTEND)]["mean"]] + [scaled[v][str(EXTEND)]["mean"] for v in names[1:]]
        after = [tuned[v][str(EXTEND)]["mean"] for v in names]
        xs3 = range(len(names))
        ax.bar([x - 0.2 for x in xs3], before, 0.4, label="no fine-tune")
        ax.bar([x + 0.2 for x in xs3], after, 0.4, label=f"{ft_steps} steps at {EXTEND}L")
        ref = evals["rope"]["1"]["mean"]
        ax.axhline(ref, color="black", linewidth=0.8, label=f"RoPE at L ({ref:.2f})")
        ax.axhline(ref * (1 + TOLERANCE), color="black", linewidth=0.6, linestyle="--", label=f"+{TOLERANCE:.0%}")
        ax.set_xticks(list(xs3), short)
        ax.set_xlabel(f"RoPE scaling x{EXTEND}")
        ax.set_ylabel(f"validation loss on {EXTEND}L windows")
        ax.set_ylim(min(before + after + [ref]) * 0.9, max(before + after) * 1.05)
        ax.set_title(f"RoPE extended to {EXTEND}L = {EXTEND * L} tokens", fontsize=8)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3, axis="y")

    theta = configs["rope"].rope.theta
    slow = _slow_frequencies(theta, head_dim, 8 * L)
    notes = [
        f"One seed, tiny models (d_model {configs['rope'].d_model}, 4 layers, {steps} steps at L={L}): published "
        "results are for models of 100M+ parameters trained on billions of tokens, where learned positions and "
        "the use of long context are far stronger; a model this small leans on the last few bytes, which makes "
        "extrapolation easier than at scale.",
        "Press et al. 2022 (figure 1) find ALiBi flat past L while rotary degrades; the claim as stated puts RoPE "
        f"beside ALiBi. Here RoPE keeps Llama 3's theta of {theta:g}: at head_dim {head_dim}, {slow} of its "
        f"{head_dim // 2} frequencies have a wavelength longer than 8L = {8 * L} tokens (with RoFormer's theta of "
        f"10000: {_slow_frequencies(10000.0, head_dim, 8 * L)}). Past L those dimensions turn to angles training "
        "never showed (what position interpolation and YaRN fold back into range), so RoPE's result here depends on "
        "theta too, not on rotation alone.",
        f"The fine-tune is short: {ft_steps} steps of {ft_batch} x {EXTEND * L} tokens at a quarter of the base "
        f"learning rate, against Chen et al. 2023's 1000 steps for position interpolation (Peng et al. 2023: YaRN "
        "needs ~10x fewer). The unscaled RoPE fine-tuned the same way is the control: a scaling earns its keep "
        "only by beating it.",
        "The learned-position model is evaluated at 1x only: archlab's model refuses windows past its table of "
        "max_seq_len positions (the reason is recorded in measurements.loss.learned).",
    ]
    return Outcome(verdict, rule, summary, measurements, plot, notes)


CLAIM = Claim(
    name="positions",
    statement="RoPE and ALiBi extrapolate to longer contexts than learned positions; NoPE layers help length "
              "generalisation; RoPE can be extended by position interpolation, NTK/YaRN and llama3 scaling",
    source="Su et al. 2021 (RoFormer); Press et al. 2022 (ALiBi, 'Train Short, Test Long', figure 1); "
           "Kazemnejad et al. 2023 (NoPE); SmolLM3 2025 (NoPE every 4th layer); Chen et al. 2023 (position "
           "interpolation); Peng et al. 2023 (YaRN, NTK-aware); Meta's Llama 3.1 rope_scaling ('llama3')",
    run=_run,
    needs_training=True,
)
