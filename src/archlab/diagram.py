"""A model's block diagram, computed once from its config and drawn two ways.

`layout(cfg)` is the diagram as data: the boxes before the decoder block (input, embedding),
the block itself as a list of steps (residual split, a box, residual add, or two branches
side by side for parallel blocks) in the order the residual layout (`cfg.block`) runs them,
the boxes after it (final norm, head), the per-layer strip and the numbers. `terminal()`
draws it in box-drawing characters within 100 columns (diagram_text.py); `svg()` draws the
same boxes as a standalone SVG (diagram_svg.py). Every number comes from analyze() and the
describe helpers; config and analysis only, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .analysis import analyze
from .catalog import resolve
from .describe import (_NORM_NAMES, _PLACEMENT, _rope_text, describe, describe_pattern, fmt_bytes, fmt_count, fmt_flops, fmt_si,
                       index_set, layer_map, layer_runs, pattern)
from .model_config import AttentionConfig, ModelConfig, NormConfig
from .parts import FFNS, MIXERS
from .parts.base import fmt_tokens

__all__ = ["Box", "Layout", "Step", "layout", "main", "svg", "terminal"]

# the context the FLOPs line is computed at (describe's default)
CONTEXT = 8192


@dataclass(frozen=True)
class Box:
    """One box: `key` names it uniquely in the diagram, `part` is the part of the config it
    shows (input, embedding, norm, attention, ffn, head, layers, numbers)."""

    key: str
    part: str
    title: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One step of the decoder block: "split" (the residual stream branches off), "box"
    (boxes[0] on the path), "add" (the branch is added back), "parallel" (two branches, each a
    tuple of boxes, from one split into one add)."""

    kind: str
    boxes: tuple[Box, ...] = ()
    right: tuple[Box, ...] = ()


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    before: tuple[Box, ...]
    block_title: str
    block: tuple[Step, ...]
    after: tuple[Box, ...]
    strip: Box
    numbers: Box
    values: dict[str, Any] = field(default_factory=dict)  # the raw numbers, as analyze() gives them

    def boxes(self) -> dict[str, Box]:
        """Every box by key (the block title as the box "block")."""
        out = {b.key: b for b in self.before}
        out["block"] = Box("block", "norm", self.block_title)
        for s in self.block:
            out.update({b.key: b for b in s.boxes + s.right})
        out.update({b.key: b for b in self.after})
        out[self.strip.key] = self.strip
        out[self.numbers.key] = self.numbers
        return out


def _norm_name(n: NormConfig) -> str:
    return _NORM_NAMES[n.kind] + ("(1+w)" if n.unit_offset else "") + (" + bias" if n.bias else "")


def _norm(cfg: ModelConfig, key: str, where: str) -> Box:
    return Box(key, "norm", f"{_norm_name(cfg.norm)} ({where}), eps {cfg.norm.eps:g}")


def _layers_of(cfg: ModelConfig, pred) -> str:
    ix = [s.index for s in cfg.layers if pred(s)]
    if len(ix) == cfg.n_layers:
        return "all layers"
    text = index_set(ix)
    # an irregular set is named by its size; the layer plan below shows where
    return f"{len(ix)}/{cfg.n_layers} layers" if "..." in text and "every" not in text else f"layers {text}"


def _softmax_lines(cfg: ModelConfig) -> list[str]:
    a = cfg.resolved_attention
    brief = MIXERS[a.kind].describe(cfg)
    lines = [brief.text]
    if isinstance(a, AttentionConfig):
        for kind, size in (("sliding", a.window), ("chunked", a.chunk)):
            if any(s.kind == kind for s in cfg.layers):
                lines.append(f"{kind} window {fmt_tokens(size)} in {_layers_of(cfg, lambda s, k=kind: s.kind == k)}"
                             if kind == "sliding" else f"chunks of {fmt_tokens(size)} in {_layers_of(cfg, lambda s: s.kind == 'chunked')}")
        if a.qk_norm is not None:
            q = a.qk_norm
            where = "per head" if a.qk_norm_scope == "head" else "across all heads"
            when = "after RoPE" if a.qk_norm_after_rope else "before RoPE"
            skip = "" if a.qk_norm_in_nope_layers else ", RoPE layers only"
            lines.append(f"QK-norm: {_norm_name(q)} {where}, {when}{skip}")
        if a.out_bias:
            lines.append("output bias")
        if a.scale is not None:
            lines.append(f"softmax scale {a.scale:.4g}")
        if a.scale_by_inverse_layer:
            lines.append("scale / (layer + 1)")
    else:
        lines.append(f"q/k head dim {a.qk_nope_head_dim} + {a.qk_rope_head_dim} RoPE, v head dim {a.v_head_dim}")
    if cfg.position_kind == "rope":
        r = _rope_text(cfg.rope, a.head_dim if isinstance(a, AttentionConfig) else None)
        if cfg.rope_local is not None:
            r += f" global, {_rope_text(cfg.rope_local, a.head_dim).removeprefix('RoPE ')} sliding"
        nope = [s for s in cfg.layers if s.kind != "linear" and s.rope is None]
        if nope:
            r += f"; NoPE in {_layers_of(cfg, lambda s: s.kind != 'linear' and s.rope is None)}"
        lines.append(r)
    elif cfg.position == "alibi":
        lines.append("ALiBi bias on the scores")
    return lines


_LONG = {"mla": "MLA (multi-head latent attention)"}


def _mixer_box(cfg: ModelConfig, a) -> Box:
    used = [k for k in MIXERS.values() if k.used(cfg)]
    if len(used) == 1:
        kind = used[0]
        title = f"{kind.describe(cfg).brief} {kind.label(cfg)}" if kind.name == "attention" else _LONG.get(kind.name, kind.label(cfg))
        lines = _softmax_lines(cfg) if kind.name != "deltanet" else [kind.describe(cfg).text]
    else:  # hybrid: one section per kind, with the layers that use it
        title = " / ".join(k.label(cfg) for k in used)
        lines = []
        for k in used:
            where = _layers_of(cfg, lambda s, k=k: s.mixer == k.name)
            lines.append(f"[{k.label(cfg)}, {where}]")
            lines += _softmax_lines(cfg) if k.name != "deltanet" else [k.describe(cfg).text + f", conv {cfg.linear_attention.conv_kernel}"]
    params = sorted({(c.mixer, c.mixer_params) for c in a.layers}, key=lambda t: [k.name for k in used].index(t[0]))
    lines.append("params " + ", ".join(f"{fmt_count(p)}" + (f" ({MIXERS[m].label(cfg)})" if len(params) > 1 else "")
                                      for m, p in params) + " per layer")
    return Box("attention", "attention", title, tuple(lines))


def _ffn_box(cfg: ModelConfig, a) -> Box:
    kinds = sorted({s.ffn for s in cfg.layers})
    lines: list[str] = []
    if "moe" in kinds:
        m, r = cfg.moe, cfg.moe.router
        title = f"MoE {m.top_k} of {m.n_experts} experts" + (f" + {m.n_shared} shared" if m.n_shared else "")
        lines.append(FFNS["moe"].describe(cfg).text)
        router = [f"router {r.score}"] + [w for w, on in (
            (f"{r.n_groups} groups, top-{r.topk_groups}", r.n_groups > 1), ("top-k renormalised", r.norm_topk),
            (f"x{r.scale:g}", r.scale != 1), ("selection bias", r.score_bias), ("logit bias", r.logit_bias),
            (f"logit softcap {r.logit_softcap:g}" if r.logit_softcap else "", r.logit_softcap),
            ("weights on the input", r.weights_on == "input"), (f"output x{m.output_scale:.4g}", m.output_scale != 1),
            ("expert biases", m.bias)) if on]
        lines.append(", ".join(router))
        if len(kinds) > 1:
            lines.append(f"MoE in {_layers_of(cfg, lambda s: s.ffn == 'moe')}")
        lines.append(f"params {fmt_count(FFNS['moe'].params(cfg)[0])}, active {fmt_count(FFNS['moe'].params(cfg)[1])} per MoE layer")
    if "dense" in kinds:
        d = FFNS["dense"].describe(cfg)
        if "moe" not in kinds:
            title = d.text
        else:
            lines.append(f"dense {d.text} in {_layers_of(cfg, lambda s: s.ffn == 'dense')}")
        f = cfg.resolved_ffn
        if "moe" not in kinds and f.bias:
            lines.append("with biases")
        lines.append(f"params {fmt_count(FFNS['dense'].params(cfg)[0])} per dense layer")
    return Box("ffn", "ffn", title, tuple(lines))


def _numbers(cfg: ModelConfig, a) -> tuple[Box, dict[str, Any]]:
    d = describe(cfg, a, context=CONTEXT)
    kv = a.kv_cache_bytes_per_token("bfloat16")
    values = {"total_params": a.total_params, "active_params": a.active_params, "kv_bytes_per_token": kv,
              "flops_per_token": a.flops_per_token(CONTEXT),
              "block_params": {r.span: (r.params, r.active) for r in layer_runs(cfg, a)}}
    lines = [f"params {fmt_count(a.total_params)}" + ("" if a.active_params == a.total_params else
                                                      f", active {fmt_count(a.active_params)} per token"),
             f"KV cache per token (bf16): {d.text('kv')}",
             f"FLOPs per token at {fmt_tokens(CONTEXT)} context: {fmt_flops(values['flops_per_token'])}"]
    seen: dict[tuple[int, int], list[int]] = {}
    for c in a.layers:
        seen.setdefault((c.params, c.active), []).append(c.index)
    for (p, act), ix in seen.items():
        where = "every layer" if len(seen) == 1 else _layers_of(cfg, lambda s, ix=set(ix): s.index in ix)
        lines.append(f"block params {fmt_count(p)}" + (f" ({fmt_count(act)} active)" if act != p else "") + f": {where}")
    return Box("numbers", "numbers", "numbers", tuple(lines)), values


def _block(cfg: ModelConfig, a) -> tuple[Step, ...]:
    att, ffn = _mixer_box(cfg, a), _ffn_box(cfg, a)
    box = lambda b: Step("box", (b,))  # noqa: E731
    split, add = Step("split"), Step("add")
    n = lambda sub, where: _norm(cfg, f"norm.{sub}", where)  # noqa: E731
    plan = {
        "pre": (split, box(n("attn", "pre")), box(att), add, split, box(n("ffn", "pre")), box(ffn), add),
        "post": (split, box(att), add, box(n("attn", "post")), split, box(ffn), add, box(n("ffn", "post"))),
        "sandwich": (split, box(n("attn", "pre")), box(att), box(n("attn.out", "post")), add,
                     split, box(n("ffn", "pre")), box(ffn), box(n("ffn.out", "post")), add),
        "output": (split, box(att), box(n("attn.out", "on the output")), add,
                   split, box(ffn), box(n("ffn.out", "on the output")), add),
        "parallel": (Step("parallel", (n("attn", "attention's"), att), (n("ffn", "FFN's"), ffn)),),
        "normed_residual": (box(n("attn", "residual normed too")), split, box(att), add,
                            box(n("ffn", "residual normed too")), split, box(ffn), add),
    }
    return plan[cfg.block]


def layout(cfg: ModelConfig | str) -> Layout:
    """The diagram as data, from the config and analyze() alone."""
    cfg = resolve(cfg)
    a = analyze(cfg)
    emb = [f"{cfg.vocab_size:,} x {cfg.d_model} = {fmt_count(cfg.vocab_size * cfg.d_model)} params"]
    title = "token embedding"
    if cfg.position == "learned":
        title += " + learned positions"
        emb.append(f"positions {cfg.max_seq_len:,} x {cfg.d_model} = {fmt_count(cfg.max_seq_len * cfg.d_model)}")
    if cfg.embed_multiplier is not None:
        emb.append(f"scaled by {cfg.embed_multiplier:.4g}" + (" (sqrt d_model)" if isinstance(cfg.embed_scale, str) else ""))
    before = [Box("input", "input", "input tokens", (f"vocab {cfg.vocab_size:,}, context {fmt_tokens(cfg.max_seq_len)}",)),
              Box("embedding", "embedding", title, tuple(emb))]
    if cfg.embed_norm:
        before.append(_norm(cfg, "norm.embed", "embedding norm"))
    after = []
    if cfg.block != "post":
        after.append(_norm(cfg, "norm.final", "final"))
    head = [f"{cfg.d_model} -> {cfg.vocab_size:,} logits"]
    head.append("tied to the token embedding" if cfg.tie_embeddings else f"untied, {fmt_count(a.head_params)} params")
    if cfg.logit_multiplier is not None:
        head.append(f"logits x {cfg.logit_multiplier:.4g}")
    if cfg.logit_softcap:
        head.append(f"logit softcap {cfg.logit_softcap:g}")
    after.append(Box("head", "head", "LM head", tuple(head)))
    plan = describe_pattern(cfg).text
    ffns = [s.ffn if s.ffn == "dense" else "MoE" for s in cfg.layers]
    if len(set(ffns)) > 1:  # dense-first, or MoE every other layer
        plan += f"; FFN {pattern(ffns)}"
    strip = Box("layers", "layers", f"layer plan ({cfg.n_layers} layers): {plan}",
                tuple(layer_map(cfg, group=10, per_line=60)))
    numbers, values = _numbers(cfg, a)
    return Layout(
        name=cfg.name, title=f"{cfg.name}" + (f" ({cfg.family})" if cfg.family else "") + f": {cfg.n_layers} layers, d_model {cfg.d_model}",
        before=tuple(before), block_title=f"decoder block x {cfg.n_layers}, {_PLACEMENT[cfg.block]}",
        block=_block(cfg, a), after=tuple(after), strip=strip, numbers=numbers, values=values,
    )


def terminal(cfg: ModelConfig | str, width: int = 100) -> str:
    """The block diagram in box-drawing characters, each line at most `width` columns."""
    from .diagram_text import render

    return render(layout(cfg), width)


def svg(cfg: ModelConfig | str) -> str:
    """The block diagram of `cfg` (a ModelConfig or a preset name) as a standalone SVG
    document (a str starting with "<svg", no external resources, every text inside the
    viewBox). Deterministic: the same config gives the same bytes."""
    from .diagram_svg import render

    return render(layout(cfg))


def main(cfg: ModelConfig, svg_file: str | None = None, width: int = 100) -> int:
    """`archlab diagram MODEL [--svg FILE]`: print the diagram; write the SVG when asked."""
    print(terminal(cfg, width))
    if svg_file:
        from pathlib import Path

        Path(svg_file).write_text(svg(cfg), encoding="utf-8")
        print(f"wrote {svg_file}")
    return 0
