"""kv-cache: what each attention kind keeps per token while generating, measured.

Tiny models of one width and depth differ only in their attention: MHA, GQA, MQA, MLA,
sliding window, and Gemma 3's 5 sliding : 1 global. For each context N, a generation cache
for N tokens is allocated as archlab.generate allocates it (model.new_cache), a short prompt
is prefilled into it and one token decoded (so it is the cache in use, not a plan), and its
bytes are read from its tensors. Beside them: the analytic figure from the config
(`analyze(cfg).kv_cache_bytes`), and the same ratios at the real presets' sizes.
"""

from __future__ import annotations

from typing import Any

from .core import Claim, Context, Outcome

# (label, preset whose tiny version supplies the attention, changes at equal width)
VARIANTS = (
    ("MHA", "llama-3-8b", {"attention": {"n_kv_heads": 8}}),
    ("GQA 8/2", "llama-3-8b", {"attention": {"n_kv_heads": 2}}),
    ("MQA", "llama-3-8b", {"attention": {"n_kv_heads": 1}}),
    ("MLA", "deepseek-v3", {}),
    # MHA heads for the windowed two, so their ratio to MHA is the window's alone
    ("sliding", "mistral-7b", {"attention": {"n_kv_heads": 8}}),
    ("5:1 hybrid", "gemma-3-27b", {"attention": {"n_kv_heads": 8}}),
)
# The published models whose ratios the tiny ones stand for (analysis only, at 32K tokens).
REAL = (("MHA", "llama-2-7b"), ("GQA", "llama-3-8b"), ("MLA", "deepseek-v3"), ("sliding", "mistral-7b"),
        ("5:1 hybrid", "gemma-3-27b"))


def _configs(ctx: Context, max_tokens: int):
    import archlab

    out = {}
    for label, preset, changes in VARIANTS:
        # one width, depth and head count for all; windows at max_tokens / 8 (tiny()'s rule),
        # so every context past that shows the ring buffer capping the sliding layers
        cfg = archlab.tiny(preset, d_model=256, n_heads=8, n_layers=6, max_seq_len=max_tokens, vocab_size=256)
        out[label] = cfg.replace(**changes) if changes else cfg
    return out


def _measure(model, cfg, tokens: int) -> int:
    import torch

    cache = model.new_cache(1, tokens)
    prompt = torch.randint(0, cfg.vocab_size, (1, min(16, tokens - 1)))
    with torch.no_grad():
        model(prompt, cache)
        model(prompt[:, -1:], cache)  # one decode step into the same cache
    return cache.nbytes


def _run(ctx: Context) -> Outcome:
    import archlab

    max_tokens = ctx.pick(1024, 32768, 32768)
    contexts = [n for n in (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768) if n <= max_tokens]
    configs = _configs(ctx, max_tokens)
    measured: dict[str, list[int]] = {}
    analytic: dict[str, list[int]] = {}
    for label, cfg in configs.items():
        ctx.say(f"{label}: caches for {contexts[0]}..{contexts[-1]} tokens")
        a = archlab.analyze(cfg)
        model = archlab.build(cfg, dtype="bfloat16").eval()
        measured[label] = [_measure(model, cfg, n) for n in contexts]
        analytic[label] = [a.kv_cache_bytes(n, dtype="bfloat16") for n in contexts]
    real = {label: archlab.analyze(archlab.config(p)).kv_cache_bytes(32768, dtype="bfloat16") for label, p in REAL}

    last = -1
    mha = measured["MHA"][last]
    ratio = {label: mha / v[last] for label, v in measured.items()}
    exact = all(measured[k] == analytic[k] for k in measured)
    n_window = next(n for n in contexts if n >= configs["sliding"].attention.window)
    capped = measured["sliding"][last] == measured["sliding"][contexts.index(n_window)]
    order = measured["MHA"][last] > measured["GQA 8/2"][last] > measured["MQA"][last] and measured["MLA"][last] < measured["GQA 8/2"][last]
    rule = ("confirmed when every measured cache equals the analytic bytes, GQA and MQA hold n_heads/n_kv times less "
            "than MHA, MLA less than GQA, and the sliding cache stops growing at its window; not confirmed otherwise")
    verdict = "confirmed" if exact and order and capped and ratio["GQA 8/2"] == 4 and ratio["MQA"] == 8 else "not confirmed"
    n = contexts[last]
    summary = (f"At {n:,} tokens MHA's cache is {mha / 2**20:.1f} MiB; GQA 8/2 holds {ratio['GQA 8/2']:.0f}x less, "
               f"MQA {ratio['MQA']:.0f}x, MLA {ratio['MLA']:.1f}x, sliding {ratio['sliding']:.1f}x, the 5:1 hybrid "
               f"{ratio['5:1 hybrid']:.1f}x; measured bytes {'equal' if exact else 'differ from'} the analytic ones. "
               f"At full size (32K): Llama-3-8B's GQA {real['MHA'] / real['GQA']:.1f}x less than Llama-2-7B's MHA, "
               f"DeepSeek-V3's MLA {real['MHA'] / real['MLA']:.1f}x less.")
    measurements: dict[str, Any] = {
        "contexts": contexts, "dtype": "bfloat16", "measured_bytes": measured, "analytic_bytes": analytic,
        "ratio_to_mha_at_max": ratio, "presets_at_32k_bytes": real, "presets": dict(REAL),
        "window": configs["sliding"].attention.window,
    }

    def plot(fig) -> None:
        ax = fig.add_subplot(1, 1, 1)
        for label in measured:
            ax.plot(contexts, [b / 2**20 for b in measured[label]], "o-", markersize=3, label=label)
            ax.plot(contexts, [b / 2**20 for b in analytic[label]], ":", color="gray", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("context (tokens)")
        ax.set_ylabel("KV cache (MiB, bfloat16)")
        ax.set_title("allocated during generation (dots) and analytic (dotted); tiny models, d_model 256, 6 layers", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

    notes = ["Tiny models of width 256 and 6 layers keep each kind's shape (8 query heads; MLA's latent from the tiny "
             f"DeepSeek-V3; windows of {configs['sliding'].attention.window} tokens for the sliding model and "
             f"{configs['5:1 hybrid'].attention.window} for the hybrid's local layers, both with MHA heads); the ratios "
             "carry over, the absolute bytes do not: the published models' caches at 32K are in presets_at_32k_bytes "
             "(they differ in depth and width too)."]
    return Outcome(verdict, rule, summary, measurements, plot, notes)


CLAIM = Claim(
    name="kv-cache",
    statement="GQA and MQA shrink the KV cache by n_heads/n_kv_heads, MLA shrinks it further, and sliding windows cap it",
    source="Ainslie et al. 2023 (GQA); Shazeer 2019 (MQA); DeepSeek-V2 report 2024, section 2.1 (MLA); "
           "Mistral 7B 2023 and Gemma 3 2025 (sliding windows)",
    run=_run,
)
