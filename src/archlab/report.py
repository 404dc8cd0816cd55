"""An HTML report of architectures side by side, in one self-contained file.

Everything is inline: CSS in a <style>, the plots as <svg> drawn by matplotlib, and the
numbers behind them as JSON in a <script type="application/json"> (data, not code), so the
file can be mailed, archived or opened offline and still shows everything. No JavaScript.

What it holds: the comparison table (the rows of `archlab compare`), KV-cache bytes against
context (log-log, where each sliding window or chunk fills marked), total against active
parameters, a per-layer map of each model, the published figures with their sources, and
the counting conventions.

The plots are drawn from `report_data(...)`, the same dictionary embedded in the file,
which in turn comes from `analyze`, so the tests can hold each curve to the analysis.
Matplotlib is imported only when a report is drawn; building the data needs no torch.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .analysis import Analysis, analyze, dtype_bytes
from .model_config import ModelConfig
from .describe import ROWS, describe, fmt_bytes, fmt_count, fmt_tokens
from .parts import MIXERS
from .report_text import convention_label, conventions_html, linkify

__all__ = ["KIND_COLORS", "build_html", "kv_curve", "report_data", "write_report"]

Progress = Callable[[str], None]

# Largest context the KV-cache plot reaches, and how densely it samples (points per doubling).
MAX_TOKENS = 1 << 20
POINTS_PER_OCTAVE = 4

KIND_COLORS = {
    "global": "#4C72B0",
    "sliding": "#55A868",
    "chunked": "#8172B2",
    "linear": "#CCB974",
    "mla": "#C44E52",
}
OTHER_COLOR = "#8C8C8C"  # a kind of layer this table does not know yet still plots, in grey
KIND_NAMES = {
    "global": "global attention", "sliding": "sliding window", "chunked": "chunked",
    "linear": "linear (Gated DeltaNet)", "mla": "MLA (global)",
}


# ---- data ---------------------------------------------------------------------------------------

def _caps(cfg: ModelConfig) -> list[int]:
    return sorted({s.window or s.chunk for s in cfg.layers if s.window or s.chunk})


def _start_tokens(configs: Sequence[ModelConfig]) -> int:
    """Where the x axis starts: 1K, or lower (a power of two) so that every window that caps
    and every short model's curve is visible."""
    lo = 1024
    for cfg in configs:
        lo = min([lo, cfg.max_seq_len // 8, *_caps(cfg)])
    return 1 << max(0, math.floor(math.log2(max(lo, 1))))


def kv_curve(analysis: Analysis, start: int, batch: int = 1, dtype: str = "bfloat16") -> dict[str, Any]:
    """KV-cache bytes from `start` tokens to the model's max context (at most 1M), on a
    geometric grid that also holds each window/chunk size exactly, where its layers stop
    growing. Returns {"tokens": [...], "bytes": [...], "caps": [{"tokens", "bytes", "kind"}]}."""
    cfg = analysis.config
    end = min(cfg.max_seq_len, MAX_TOKENS)
    start = min(start, end)
    steps = round(math.log2(end / start) * POINTS_PER_OCTAVE)
    grid = {start, end, *(round(start * 2 ** (i / POINTS_PER_OCTAVE)) for i in range(steps + 1))}
    caps = [c for c in _caps(cfg) if start <= c <= end]
    grid |= set(caps)
    tokens = sorted(t for t in grid if start <= t <= end)
    def size(t: int) -> int:
        return analysis.kv_cache_bytes(t, batch, dtype)
    kind = {s.window or s.chunk: ("sliding" if s.window else "chunked") for s in cfg.layers if s.window or s.chunk}
    return {
        "tokens": tokens,
        "bytes": [size(t) for t in tokens],
        "caps": [{"tokens": c, "bytes": size(c), "kind": kind[c]} for c in caps],
    }


def _layer_cells(cfg: ModelConfig) -> list[dict[str, Any]]:
    return [
        {
            "kind": MIXERS[spec.mixer].plan_kind(spec),
            "moe": spec.ffn == "moe",
            "nope": spec.kind != "linear" and spec.rope is None and cfg.position_kind == "rope",
        }
        for spec in cfg.layers
    ]


def report_data(
    configs: Sequence[ModelConfig],
    *,
    context: int = 8192,
    batch: int = 1,
    dtype: str = "bfloat16",
    titles: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain data (what the file embeds as JSON). titles: a
    name per model to show instead of its config's (a config file's own name)."""
    dtype_bytes(dtype)
    start = _start_tokens(configs)
    models = []
    for n, cfg in enumerate(configs):
        a = analyze(cfg)
        d = describe(cfg, a, context=context, batch=batch, dtype=dtype)
        models.append({
            **d.to_dict(),
            **({"name": titles[n]} if titles else {}),
            "rows": {k: d.text(k) for k, _ in ROWS},
            "moe": any(s.ffn == "moe" for s in cfg.layers),
            "kv_curve": kv_curve(a, start, batch, dtype),
            "layers": _layer_cells(cfg),
        })
    return {
        "context": context, "batch": batch, "dtype": dtype, "kv_start_tokens": start,
        "rows": [{"key": k, "label": label.format(ctx=fmt_tokens(context))} for k, label in ROWS],
        "conventions": Analysis.CONVENTIONS,
        "models": models,
    }


# ---- figures ------------------------------------------------------------------------------------

def figure_kv(data: dict[str, Any]):
    """Every model's KV curve in one plot, each named at its end (report_kv)."""
    from .report_kv import figure

    return figure(data, list(range(len(data["models"]))), "", (9.0, 5.4))


def figure_params(data: dict[str, Any]):
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(9, 6.5), layout="constrained")
    ax = fig.add_subplot()
    totals = [m["numbers"]["total_params"] for m in data["models"]]
    lo, hi = min(totals) / 2, max(totals) * 2
    ax.plot([lo, hi], [lo, hi], color="0.6", ls="--", lw=1, label="dense: active = total")
    for moe, color, label in ((False, "#4C72B0", "dense"), (True, "#DD8452", "mixture of experts")):
        pts = [m for m in data["models"] if m["moe"] == moe]
        if not pts:
            continue
        xs = [m["numbers"]["total_params"] for m in pts]
        ys = [m["numbers"]["active_params"] for m in pts]
        coll = ax.scatter(xs, ys, s=36, color=color, edgecolor="black", linewidth=0.5, label=label, zorder=3)
        coll.set_gid(f"params-{'moe' if moe else 'dense'}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    fmt = FuncFormatter(lambda v, _: re.sub(r"\.0+(?=[KMBT])", "", fmt_count(v)))
    ax.xaxis.set_major_formatter(fmt)
    ax.yaxis.set_major_formatter(fmt)
    ax.set_xlim(lo, hi)
    ys = [m["numbers"]["active_params"] for m in data["models"]]
    ax.set_ylim(min(ys) / 2, max(ys) * 3)
    _label_points(ax, [(m["name"] + ("" if m["verified"] else "*"), m["numbers"]["total_params"],
                        m["numbers"]["active_params"]) for m in data["models"]])
    ax.set_xlabel("total parameters")
    ax.set_ylabel("active parameters per token (embedding and head included)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    ax.set_title("Total against active parameters")
    return fig


def _label_points(ax, points: list[tuple[str, float, float]], fontsize: float = 9.0) -> None:
    """Name each point where its label overlaps no other label and no point: candidates
    around the point, nearest first, the first free one wins (estimated text boxes)."""
    fig = ax.figure
    to_pt = 72 / fig.dpi
    char_w, height = 0.56 * fontsize, 1.15 * fontsize
    where = [tuple(v * to_pt for v in ax.transData.transform((x, y))) for _, x, y in points]
    taken: list[tuple[float, float, float, float]] = [(px - 3, py - 3, px + 3, py + 3) for px, py in where]

    def free(box) -> bool:
        return all(box[2] <= b[0] or box[0] >= b[2] or box[3] <= b[1] or box[1] >= b[3] for b in taken)

    candidates = [(dx, dy) for r in (1, 2, 3, 4) for dx, dy in
                  ((5, -4), (-5, -4), (5, 4 * r), (-5, 4 * r), (5, -4 - 7 * r), (-5, -4 - 7 * r))]
    order = sorted(range(len(points)), key=lambda i: where[i])
    for i in order:
        name = points[i][0]
        px, py = where[i]
        w = char_w * len(name)
        for dx, dy in candidates:
            x0 = px + dx if dx > 0 else px + dx - w
            box = (x0, py + dy, x0 + w, py + dy + height)
            if free(box):
                break
        else:
            dx, dy = candidates[0]
            x0 = px + dx
            box = (x0, py + dy, x0 + w, py + dy + height)
        taken.append(box)
        ax.annotate(name, points[i][1:], xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                    ha="left" if dx > 0 else "right", va="bottom")


def figure_layers(data: dict[str, Any]):
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    models = data["models"]
    n = len(models)
    depth = max(len(m["layers"]) for m in models)
    fig = Figure(figsize=(9.5, 1.5 + 0.3 * n), layout="constrained")
    ax = fig.add_subplot()
    used, any_moe, any_nope = set(), False, False
    for row, m in enumerate(models):
        y = n - 1 - row  # first model on top
        cells = m["layers"]
        ax.broken_barh([(i, 0.92) for i in range(len(cells))], (y - 0.4, 0.8),
                       facecolors=[KIND_COLORS.get(c["kind"], OTHER_COLOR) for c in cells], gid=f"layers-{m['name']}")
        used |= {c["kind"] for c in cells}
        moe = [i for i, c in enumerate(cells) if c["moe"]]
        if moe:
            any_moe = True
            ax.broken_barh([(i, 0.92) for i in moe], (y - 0.4, 0.22), facecolors="#222222")
        nope = [i for i, c in enumerate(cells) if c["nope"]]
        if nope:
            any_nope = True
            ax.plot([i + 0.46 for i in nope], [y + 0.12] * len(nope), ls="", marker="o", ms=3.2,
                    mfc="white", mec="black", mew=0.6)
        ax.text(len(cells) + 0.6, y, str(len(cells)), va="center", fontsize=9, color="0.35")
    ax.set_yticks(range(n), [m["name"] + ("" if m["verified"] else "*") for m in reversed(models)], fontsize=9)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(0, depth + 3)
    ax.set_xlabel("layer")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    handles = [Patch(color=KIND_COLORS.get(k, OTHER_COLOR), label=KIND_NAMES.get(k, k)) for k in [*KIND_COLORS, *sorted(used - set(KIND_COLORS))] if k in used]
    if any_moe:
        handles.append(Patch(color="#222222", label="MoE FFN (dark base; none = dense)"))
    if any_nope:
        handles.append(Line2D([], [], ls="", marker="o", mfc="white", mec="black", label="NoPE (no RoPE)"))
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(4, len(handles)),
              fontsize=9, frameon=False)
    return fig


def svg(fig, prefix: str) -> str:
    """A figure as an <svg> element for inline HTML: no XML prolog, no namespace URLs (the
    HTML parser knows SVG), text kept as text, and every id prefixed so that several figures
    in one page cannot collide."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # matplotlib's stylesheet says *{...}: inline, it would reach the whole page (_CSS has it, scoped)
    text = re.sub(r"\s*<defs>\s*<style[^>]*>[^<]*</style>\s*</defs>", "", text, count=1)
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text, count=2)
    ids = set(re.findall(r'\sid="([^"]+)"', text))
    text = re.sub(r'(\sid="|href="#|url\(#)([^")]+)', lambda m: m.group(1) + (f"{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(2)), text)
    return re.sub(r"<!--.*?-->\n?", "", text, flags=re.DOTALL)


# ---- the page -------------------------------------------------------------------------------------

# Phone-sized screens (390 px): text stays >= 12 px, the table's first column wraps instead
# of taking half the screen, and each plot keeps its natural size inside its own scroller.
_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1.5em; color: #1b1b1b; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.settings, .note, figcaption { color: #555; font-size: 14px; }
.scroll { overflow-x: auto; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: .35em .6em; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
table.compare td { min-width: 11em; max-width: 22em; }
table.compare th:first-child, table.compare td:first-child { position: sticky; left: 0; background: #f7f7f7;
       font-weight: 600; min-width: 7.5em; max-width: 9em; z-index: 1; }
table.sources td { max-width: 26em; } table.sources td:nth-child(n+2) { min-width: 9em; } table.sources td:nth-child(n+4) { width: 18em; } table.sources td:first-child { min-width: 6em; max-width: 9em; }
thead th { background: #f0f0f0; position: sticky; top: 0; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.unverified { color: #b00; }
a { color: #1a5fb4; overflow-wrap: anywhere; }
figure { margin: 1em 0; }
.plot { overflow-x: auto; } .plot svg { display: block; height: auto; }
.facets { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 520px), 1fr)); gap: .5em 1.5em; }
figure svg * { stroke-linejoin: round; stroke-linecap: butt; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 13px; }
@media (max-width: 600px) { body { padding: 0 .6em; margin: 1em auto; font-size: 15px; }
  table.compare td { min-width: 9em; } }
"""

_NUMERIC = {"params", "active", "context", "kv_at", "flops"}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _name_cell(m: dict[str, Any]) -> str:
    return _e(m["name"]) + ("" if m["verified"] else ' <span class="unverified" title="not verified against a reference">*</span>')


def _table(data: dict[str, Any]) -> str:
    models = data["models"]
    head = "".join(f"<th>{_name_cell(m)}</th>" for m in models)
    rows = []
    for r in data["rows"]:
        cls = ' class="num"' if r["key"] in _NUMERIC else ""
        cells = "".join(f"<td{cls}>{_e(m['rows'][r['key']])}</td>" for m in models)
        rows.append(f"<tr><td>{_e(r['label'])}</td>{cells}</tr>")
    return (f'<div class="scroll"><table class="compare"><thead><tr><th>part</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _sources(data: dict[str, Any]) -> str:
    rows = []
    for m in data["models"]:
        p = m["published"] or {}
        ours = fmt_count(m["numbers"]["total_params"])
        if p.get("active"):
            conv = convention_label(p["active_convention"])
            published = f"{p['total']} total; {p['active']} active ({conv})"
            ours += f"; {fmt_count(p['active_ours'])} active ({conv})"
        else:
            published = p.get("total", "-")
        if p and not p.get("by_authors", True):
            published += " (not by the authors)"
        where = linkify(p.get("source", "")) + (f'<br><span class="note">{linkify(p["note"])}</span>' if p.get("note") else "")
        rows.append(f"<tr><td>{_name_cell(m)}</td><td>{_e(published)}</td><td>{_e(ours)}</td>"
                    f"<td>{where}</td><td>{linkify(m['source'])}</td></tr>")
    return ('<div class="scroll"><table class="sources"><thead><tr><th>model</th><th>published</th><th>ours</th>'
            "<th>published where, and notes</th><th>config from</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def build_html(
    configs: Sequence[ModelConfig],
    *,
    context: int = 8192,
    batch: int = 1,
    dtype: str = "bfloat16",
    progress: Progress | None = None,
    lab: Sequence[dict[str, Any]] = (),
    titles: Sequence[str] | None = None,
    notes: bool = True,
) -> str:
    """lab: results of the claims lab (result.json dicts, each with its plot's PNG bytes
    under "plot_png"), shown as a table of verdicts and their plots. titles: see report_data.
    notes=False leaves out the counting conventions (the embedded data still holds them)."""
    from .report_kv import figures as kv_figures

    say = progress or (lambda _msg: None)
    say(f"analysing {len(configs)} model{'s' if len(configs) != 1 else ''}")
    data = report_data(configs, context=context, batch=batch, dtype=dtype, titles=titles)
    figures = []
    for i, (key, title, draw, caption) in enumerate((
        ("kv", "KV cache against context", kv_figures,
         ("Bytes the caches hold for one sequence, computed from the config. Hollow circles: a "
         "sliding window or chunk is full and those layers stop growing; global and MLA layers keep growing; "
         "linear-attention layers hold a fixed state.")),
        ("params", "Total against active parameters", figure_params,
         "Dense models lie on the diagonal; a mixture of experts sits below it by the share of experts a token skips."),
        ("layers", "Layer plans", figure_layers,
         ("One cell per layer, coloured by its attention kind; a dark base marks an MoE feed-forward, a white dot a "
         "layer without RoPE.")),
    ), start=1):
        say(f"plot {i}/3: {title.lower()}")
        drawn = draw(data)
        if isinstance(drawn, list) and len(drawn) > 1:  # one small plot per family, on the same axes
            image = '<div class="facets">' + "".join(
                f'<div class="plot">{svg(fig, f"{key}{j}")}</div>' for j, (_, fig) in enumerate(drawn)) + "</div>"
            caption += " One plot per family, all on the same axes; each line is named at its end."
        else:
            image = f'<div class="plot">{svg(drawn[0][1] if isinstance(drawn, list) else drawn, key)}</div>'
        figures.append((key, title, image, caption))
    names = ", ".join(m["name"] for m in data["models"])
    unverified = [m["name"] for m in data["models"] if not m["verified"]]
    from . import __version__

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>archlab: {_e(names)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{len(data['models'])} architectures side by side</h1>",
        (f'<p class="settings">{_e(names)}. Context {fmt_tokens(context)} tokens ({context:,}), batch {batch}, '
        f"KV cache in {_e(dtype)}. Every number is computed from the model's config by archlab {_e(__version__)}.</p>"),
        "<h2>Comparison</h2>",
        _table(data),
    ]
    if unverified:
        parts.append(f'<p class="note"><span class="unverified">*</span> not verified against a reference '
                     f"implementation: {_e(', '.join(unverified))}; see the source of its config below.</p>")
    for key, title, image, caption in figures:
        parts.append(f'<h2>{_e(title)}</h2><figure id="fig-{key}">{image}<figcaption>{_e(caption)}</figcaption></figure>')
    if lab:
        parts += _lab_section(lab)
    parts += [
        "<h2>Published figures and sources</h2>",
        _sources(data),
        *(["<h2>Conventions</h2>", conventions_html(data["conventions"])] if notes else []),
        # the numbers behind the table and plots, for whoever wants them (inert: not a script)
        '<script type="application/json" id="archlab-data">'
        + json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
        + "</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _lab_section(results: Sequence[dict[str, Any]]) -> list[str]:
    import base64

    rows = "".join(
        f"<tr><td>{_e(r['claim'])}</td><td>{_e(r['statement'])}</td><td class=\"verdict-{_e(r['verdict'].replace(' ', '-'))}\">"
        f"{_e(r['verdict'])}</td><td>{_e(r['summary'])}</td><td>{_e(r['budget'])}, {r.get('seconds', 0):.0f} s</td></tr>"
        for r in results
    )
    out = ["<h2>Claims, measured</h2>",
           '<div class="scroll"><table><tr><th>claim</th><th>statement</th><th>verdict</th><th>found</th><th>budget</th></tr>'
           f"{rows}</table></div>"]
    for r in results:
        if r.get("plot_png"):
            data = base64.b64encode(r["plot_png"]).decode("ascii")
            out.append(f'<figure id="lab-{_e(r["claim"])}"><img alt="{_e(r["claim"])}" style="max-width:100%" '
                       f'src="data:image/png;base64,{data}"><figcaption>{_e(r["claim"])}: {_e(r["rule"])}. '
                       f"Reproduce: <code>{_e(r['command'])}</code></figcaption></figure>")
    return out


def write_report(
    path: str | Path,
    configs: Sequence[ModelConfig],
    *,
    context: int = 8192,
    batch: int = 1,
    dtype: str = "bfloat16",
    progress: Progress | None = None,
    lab: Sequence[dict[str, Any]] = (),
    titles: Sequence[str] | None = None,
    notes: bool = True,
) -> Path:
    """Write the report to `path` atomically: a reader never sees half a file, and a
    failure leaves whatever was there before."""
    from .io.atomic import atomic_file, make_parent

    path = Path(path)
    make_parent(path)  # an unwritable place fails now, not after the drawing
    page = build_html(configs, context=context, batch=batch, dtype=dtype, progress=progress, lab=lab, titles=titles, notes=notes)
    with atomic_file(path, "wb") as f:
        f.write(page.encode("utf-8"))
    if progress:
        progress(f"wrote {path} ({fmt_bytes(len(page.encode('utf-8')))})")
    return path
