"""What changed from one architecture to the next, part by part, with its effect computed.

`changes(a, b)` compares the resolved configs (so a head_dim left to the width and the same
head_dim written out are no change) field by field, files each differing field under one
part (norm, position, attention, FFN, layout, sizes; PART_OF), and describes each part on
both sides with the describe helpers. "cache" has no fields of its own: it is listed when
what a token leaves in the cache differs. Each change carries its effect computed by
analyze() (KV per token x0.25, active parameters, FLOPs per token) and, given the lab's
results (lab.core.read_results), the verdicts of its claims about that kind of change. No
torch, and nothing above the analysis layer (the cli reads the lab's folder).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from .analysis import _BLOCK_NORMS, analyze
from .catalog import resolve
from .describe import describe, describe_pattern, fmt_bytes, fmt_count, fmt_flops
from .model_config import ModelConfig

__all__ = ["Change", "cache_differs", "changes", "fields_differing", "part_of", "PARTS", "PART_OF", "table", "main"]

# The parts a change is filed under, in display order.
PARTS = ("norm", "position", "attention", "ffn", "layout", "cache", "sizes")

# Each config field's part: the first entry that is the field or a prefix of its path wins.
# QK-norm is a norm (describe_norm names it); the per-layer rules are the layout.
PART_OF = (
    ("attention.qk_norm", "norm"), ("attention.qk_norm_scope", "norm"), ("attention.qk_norm_in_nope_layers", "norm"),
    ("attention.qk_norm_after_rope", "norm"), ("norm", "norm"), ("block", "norm"), ("embed_norm", "norm"),
    ("position", "position"), ("rope_local", "position"), ("rope_layers", "position"),
    ("attention", "attention"), ("linear_attention", "attention"),
    ("ffn", "ffn"), ("moe", "ffn"),
    ("layer_types", "layout"), ("ffn_types", "layout"), ("tie_embeddings", "layout"),
    ("embed_scale", "layout"), ("logit_scale", "layout"), ("logit_softcap", "layout"),
    ("vocab_size", "sizes"), ("d_model", "sizes"), ("n_layers", "sizes"), ("max_seq_len", "sizes"),
)
# what a config says about itself rather than the model
METADATA = ("name", "family", "source")
# the lab's claims (archlab/lab) that judge a change to each part
CLAIMS = {"norm": ("norm-speed", "norm-placement"), "position": ("positions",), "attention": ("gqa", "kv-cache"),
          "ffn": ("ffn", "moe", "balancing"), "cache": ("kv-cache",), "sizes": ("scale-vs-architecture",),
          "layout": ()}
CONTEXT = 8192  # the context FLOPs are compared at (describe's default)


@dataclass(frozen=True)
class Change:
    """One part that differs from A to B.

    part: one of PARTS. fields: the resolved-config field paths that differ ("norm.kind",
    "attention.n_kv_heads"); empty for "cache", which follows from the others. before / after:
    the part in words for A and B. effect: its computed effect in words ("KV per token
    x0.25"), "" when none applies. verdict: the lab's verdicts on this kind of change when a
    results folder was given, else None."""

    part: str
    fields: tuple[str, ...]
    before: str
    after: str
    effect: str = ""
    verdict: str | None = None


def part_of(path: str) -> str:
    for prefix, part in PART_OF:
        if path == prefix or path.startswith(prefix + "."):
            return part
    raise KeyError(f"{path}: no part files this config field; add it to diff.PART_OF")


def _diff(x: Any, y: Any, prefix: str, out: list[str]) -> None:
    """Paths under `prefix` where x and y differ. Sub-configs of one type are compared field
    by field; a sub-config against None or another type (MHA -> MLA, no MoE -> MoE) is one
    change of the sub-config itself."""
    same_kind = isinstance(x, dict) and isinstance(y, dict) and x.get("type") == y.get("type")
    if not same_kind:
        if x != y:
            out.append(prefix)
        return
    for k in [k for k in x if k != "type"] + [k for k in y if k not in x and k != "type"]:
        _diff(x.get(k), y.get(k), f"{prefix}.{k}" if prefix else k, out)


def fields_differing(a: ModelConfig, b: ModelConfig) -> list[str]:
    """The resolved-config field paths whose values differ (metadata left out), in PARTS
    order. Per-layer rules of models of different depths are compared by their pattern in
    words ("5 sliding : 1 global"), since one entry per layer always differs in length."""
    found: list[str] = []
    _diff(a.resolved().to_dict(), b.resolved().to_dict(), "", found)
    out = []
    for k in found:
        if k in METADATA:
            continue
        if k in ("layer_types", "ffn_types", "rope_layers") and a.n_layers != b.n_layers and _plan(a, k) == _plan(b, k):
            continue
        out.append(k)
    return sorted(out, key=lambda k: PARTS.index(part_of(k)))


def _plan(cfg: ModelConfig, rule: str) -> str:
    from .describe import pattern

    kinds = {"layer_types": [s.kind for s in cfg.layers], "ffn_types": [s.ffn.replace("moe", "MoE") for s in cfg.layers],
             "rope_layers": [s.rope is not None for s in cfg.layers]}[rule]
    return pattern([str(k) for k in kinds])


def _ratio(x: float, y: float) -> str:
    if x == y:
        return "same"
    if x == 0:
        return "from none"
    r = y / x
    return f"x{r:.3g}" if r >= 0.01 else f"x{r:.2g}"


def _words(cfg: ModelConfig, d, part: str) -> str:
    if part == "layout":
        head = "tied head" if cfg.tie_embeddings else "untied head"
        extra = [w for w, on in ((f"embeddings x{cfg.embed_multiplier:.4g}" if cfg.embed_multiplier else "", cfg.embed_multiplier),
                                 (f"logits x{cfg.logit_multiplier:.4g}" if cfg.logit_multiplier else "", cfg.logit_multiplier),
                                 (f"logit softcap {cfg.logit_softcap:g}" if cfg.logit_softcap else "", cfg.logit_softcap)) if on]
        plans = [d.text("pattern")] + [f"{what}: {_plan(cfg, rule)}" for what, rule in (("FFN", "ffn_types"), ("RoPE", "rope_layers"))
                                       if cfg.position_kind == "rope" or rule != "rope_layers"
                                       if not _plan(cfg, rule).startswith("all ")]
        return "; ".join([*plans, head, *extra])
    if part == "cache":
        return d.text("kv")
    if part == "norm":
        return f"{d.text('norm')}, eps {cfg.norm.eps:g}"
    if part == "sizes":
        return f"{d.text('layers')}, {d.text('context')} context; {d.text('params')} params, {d.text('active')} active"
    return d.text(part)


def _effect(part: str, a, b) -> str:
    ca, cb = a.config, b.config
    # per layer (the mean over the layers), so that a change of depth is not read as one of attention
    ka, kb = (x.kv_cache_bytes_per_token() / x.config.n_layers for x in (a, b))
    kv = f"KV per token per layer {_ratio(ka, kb)}"
    if part == "attention":
        pa, pb = (sum(c.mixer_params for c in x.layers) / x.config.n_layers for x in (a, b))
        return f"{kv}; attention params per layer {fmt_count(pa)} -> {fmt_count(pb)} ({_ratio(pa, pb)})"
    if part == "cache":
        return (f"{fmt_bytes(a.kv_cache_bytes_per_token())} -> {fmt_bytes(b.kv_cache_bytes_per_token())} per token "
                f"({_ratio(a.kv_cache_bytes_per_token(), b.kv_cache_bytes_per_token())}); at {CONTEXT // 1024}K "
                f"{fmt_bytes(a.kv_cache_bytes(CONTEXT))} -> {fmt_bytes(b.kv_cache_bytes(CONTEXT))}")
    if part == "ffn":
        fa, fb = (sum(c.ffn_active for c in x.layers) / x.config.n_layers for x in (a, b))
        ta, tb = (sum(c.ffn_params for c in x.layers) / x.config.n_layers for x in (a, b))
        text = f"FFN active params per layer {fmt_count(fa)} -> {fmt_count(fb)} ({_ratio(fa, fb)})"
        return text + (f", total {fmt_count(ta)} -> {fmt_count(tb)} ({_ratio(ta, tb)})" if (ta, tb) != (fa, fb) else "")
    if part == "sizes":
        return (f"params {_ratio(a.total_params, b.total_params)}, active {_ratio(a.active_params, b.active_params)}, "
                f"FLOPs per token at {CONTEXT // 1024}K {fmt_flops(a.flops_per_token(CONTEXT))} -> "
                f"{fmt_flops(b.flops_per_token(CONTEXT))} ({_ratio(a.flops_per_token(CONTEXT), b.flops_per_token(CONTEXT))})")
    if part == "norm":
        na, nb = _BLOCK_NORMS[ca.block], _BLOCK_NORMS[cb.block]
        return f"norms per block {na} -> {nb}" if na != nb else ""
    if part == "position":
        pa, pb = (x.embedding_params - x.config.vocab_size * x.config.d_model for x in (a, b))
        return f"position table {fmt_count(pa)} -> {fmt_count(pb)} params" if pa != pb else ""
    if part == "layout":
        if ca.tie_embeddings == cb.tie_embeddings:
            return ""
        return f"head {'tied' if ca.tie_embeddings else 'untied'} -> {'tied' if cb.tie_embeddings else 'untied'} ({fmt_count(b.head_params)} head params)"
    return ""


def cache_differs(a, b) -> bool:
    """Whether the caches of two analysed models hold different bytes at some length: at 1
    and 2 tokens, at a long sequence, and where each window or chunk fills."""
    caps = {s.window or s.chunk for x in (a, b) for s in x.config.layers if s.window or s.chunk}
    probes = sorted({1, 2, 1_000_000} | caps | {c + 1 for c in caps})
    return any(a.cache_bytes_per_layer(t) != b.cache_bytes_per_layer(t) for t in probes)


def _verdicts(results: list[dict[str, Any]] | None) -> dict[str, str]:
    return {r["claim"]: f"lab {r['claim']}: {r['verdict']} ({r['summary']})" for r in results or ()}


def changes(a: ModelConfig | str, b: ModelConfig | str, results: list[dict[str, Any]] | None = None) -> list[Change]:
    """The parts that differ from `a` to `b` (ModelConfigs or preset names), in PARTS order;
    empty when they are the same model (their resolved() configs equal, metadata aside).
    `results`: the lab's results (lab.core.read_results(DIR), as `archlab lab ... --out DIR`
    wrote them), whose verdicts on each kind of change are attached to it."""
    a, b = resolve(a), resolve(b)
    aa, ab = analyze(a), analyze(b)
    da, db = describe(a, aa, context=CONTEXT), describe(b, ab, context=CONTEXT)
    by_part: dict[str, list[str]] = {}
    for f in fields_differing(a, b):
        by_part.setdefault(part_of(f), []).append(f)
    if cache_differs(aa, ab):
        by_part["cache"] = []
    verdicts = _verdicts(results)
    out = []
    for part in PARTS:
        if part not in by_part:
            continue
        v = [verdicts[c] for c in CLAIMS[part] if c in verdicts]
        out.append(Change(part, tuple(by_part[part]), _words(a, da, part), _words(b, db, part),
                          _effect(part, aa, ab), "; ".join(v) or None))
    return out


def table(models: list[ModelConfig | str], width: int = 100, results: list[dict[str, Any]] | None = None) -> str:
    """The classic "what changed" table: one column per model, one row per part that changes
    anywhere along the list; each column after the first says what changed from the one
    before it and its effect."""
    cfgs = [resolve(m) for m in models]
    steps = [changes(x, y, results) for x, y in zip(cfgs, cfgs[1:])]
    parts = [p for p in PARTS if any(c.part == p for s in steps for c in s)]
    descs = [describe(c, context=CONTEXT) for c in cfgs]
    label_w = 11
    col_w = max(16, (width - label_w - 3 * len(cfgs)) // len(cfgs))
    cells: list[list[str]] = [[c.name for c in cfgs]]
    for p in parts:
        row = [_words(cfgs[0], descs[0], p)]
        for i, s in enumerate(steps):
            ch = next((c for c in s if c.part == p), None)
            text = _words(cfgs[i + 1], descs[i + 1], p)
            row.append(text if ch is None else f"{text} [{ch.effect}]" if ch.effect else text)
            if ch is None:
                row[-1] = "= " + row[-1]
            elif ch.verdict:
                row[-1] += f" {{{ch.verdict}}}"
        cells.append(row)
    lines = []
    for label, row in zip(["part"] + parts, cells):
        wrapped = [textwrap.wrap(t, col_w, break_on_hyphens=False) or [""] for t in row]
        for k in range(max(map(len, wrapped))):
            lines.append(" | ".join([(label if k == 0 else "").ljust(label_w)] +
                                    [(w[k] if k < len(w) else "").ljust(col_w) for w in wrapped]).rstrip())
        lines.append("-" * min(width, label_w + (col_w + 3) * len(cfgs)))
    return "\n".join(lines)


def main(models: list[ModelConfig], results: list[dict[str, Any]] | None = None, width: int = 100) -> int:
    """`archlab diff A B [C ...]`: the table, then each step's changes with their fields."""
    if len(models) < 2:
        raise ValueError("name at least two models to compare (archlab diff A B [C ...])")
    print(table(models, width, results))
    for x, y in zip(models, models[1:]):
        ch = changes(x, y, results)
        print(f"\n{x.name} -> {y.name}: " + ("no change" if not ch else f"{len(ch)} parts changed"))
        for c in ch:
            line = f"{c.part}: {c.effect or c.before + ' -> ' + c.after}" + (f" ({', '.join(c.fields)})" if c.fields else "")
            print(textwrap.fill(line, width, initial_indent="  ", subsequent_indent="      ", break_on_hyphens=False))
    return 0
