"""STAND-INS for archlab.diagram.svg and archlab.diff.changes, used only while those modules
are absent or still stubs (they are written on another branch). Same signatures, plainer
output: a column of boxes, and a part-by-part comparison of describe()'s words. Once the real
ones land, `archlab notes` uses them and this file can go.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from ..analysis import analyze
from ..catalog import resolve
from ..describe import describe, fmt_count, fmt_flops, layer_map
from ..model_config import ModelConfig


@dataclass(frozen=True)
class _Change:
    """The shape of archlab.diff.Change."""

    part: str
    fields: tuple[str, ...]
    before: str
    after: str
    effect: str = ""
    verdict: str | None = None


# (part, describe() keys whose words make it up); parts in archlab.diff.PARTS order
_PARTS = (("norm", ("norm",)), ("position", ("position",)), ("attention", ("attention",)), ("ffn", ("ffn",)),
          ("layout", ("pattern", "layers")), ("cache", ("kv",)), ("sizes", ("params", "active", "context")))
_CONTEXT = 8192


def _ratio(a: float, b: float) -> str:
    return f"x{b / a:.3g}" if a else "new"


def _changes_fallback(a: ModelConfig | str, b: ModelConfig | str, results: str | None = None) -> list[_Change]:
    ca, cb = resolve(a), resolve(b)
    aa, ab = analyze(ca), analyze(cb)
    da, db = describe(ca, aa, context=_CONTEXT), describe(cb, ab, context=_CONTEXT)
    effects = {
        "cache": f"KV per token {_ratio(aa.kv_cache_bytes_per_token(), ab.kv_cache_bytes_per_token())}",
        "sizes": f"active params {_ratio(aa.active_params, ab.active_params)}, "
                 f"FLOPs/token @ 8K {_ratio(aa.flops_per_token(_CONTEXT), ab.flops_per_token(_CONTEXT))}",
    }
    out = []
    for part, keys in _PARTS:
        before = "; ".join(da.text(k) for k in keys)
        after = "; ".join(db.text(k) for k in keys)
        if before != after:
            out.append(_Change(part, keys, before, after, effects.get(part, "")))
    return out


# ---- the diagram ------------------------------------------------------------------------------

_CH = 7.6  # px per character of 12px monospace, with room to spare (checked in chromium)
_LINE = 16


def _diagram_svg_fallback(cfg: ModelConfig | str) -> str:
    c = resolve(cfg)
    a = analyze(c)
    d = describe(c, a, context=_CONTEXT)
    per_block = max(l.params for l in a.layers)
    boxes = [
        ("input", [f"tokens (vocab {c.vocab_size:,})"]),
        ("embedding", [f"{fmt_count(a.embedding_params)} parameters"]
         + ([d.text("position")] if c.position == "learned" else [])),
        (f"decoder block x {c.n_layers}", [
            f"norm: {d.text('norm')}", f"position: {d.text('position')}", f"attention: {d.text('attention')}",
            f"feed-forward: {d.text('ffn')}", f"params per block: up to {fmt_count(per_block)}",
            f"KV cache per token: {d.text('kv')}"]),
        ("final norm and head", [f"head {'tied to the embedding' if c.tie_embeddings else fmt_count(a.head_params)}",
                                 f"FLOPs/token @ 8K: {fmt_flops(a.flops_per_token(_CONTEXT))}"]),
        ("layer plan", layer_map(c, per_line=30)),
    ]
    width = int(max(len(t) for _, lines in boxes for t in lines) * _CH) + 40
    y, parts = 10, []
    for title, lines in boxes:
        h = _LINE * (len(lines) + 1) + 12
        parts.append(f'<rect x="10" y="{y}" width="{width - 20}" height="{h}" rx="6" fill="#f4f6fb" stroke="#556"/>')
        parts.append(f'<text x="20" y="{y + 18}" font-weight="bold">{escape(title)}</text>')
        for i, t in enumerate(lines):
            parts.append(f'<text x="20" y="{y + 18 + _LINE * (i + 1)}" xml:space="preserve">{escape(t)}</text>')
        y += h
        if title != "layer plan":
            parts.append(f'<line x1="{width // 2}" y1="{y}" x2="{width // 2}" y2="{y + 18}" stroke="#556"/>')
        y += 18
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" viewBox="0 0 {width} {y}" '
            f'font-family="monospace" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(parts) + "\n</svg>\n")


__all__ = ["_changes_fallback", "_diagram_svg_fallback"]
