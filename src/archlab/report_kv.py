"""The report's KV-cache plot: one plot when a few models are compared, and one small plot per
family when many are, every line named at its end instead of in a legend (a legend of 40
entries must reuse colours, and a reader matches them by eye).

All the plots of one report share their axes, so a curve reads the same in every family's
plot. Font sizes are at least FONT points: the page shows each plot at its natural size
(or larger), in a horizontal scroller, so 9 pt is 12 CSS pixels on any screen.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .describe import fmt_bytes, fmt_tokens

FONT = 9.0  # points; the smallest text in a plot
GROUP_ABOVE = 8  # more models than this: one plot per family


def groups(models: list[dict[str, Any]]) -> list[tuple[str, list[int]]]:
    """(title, indices of models) per plot: all in one, or one per family in first-seen order."""
    if len(models) <= GROUP_ABOVE:
        return [("", list(range(len(models))))]
    fams: dict[str, list[int]] = {}
    for i, m in enumerate(models):
        fams.setdefault(m.get("family") or "other", []).append(i)
    return list(fams.items())


def _limits(models: list[dict[str, Any]]) -> tuple[tuple[float, float], tuple[float, float]]:
    xs = [t for m in models for t in m["kv_curve"]["tokens"]]
    ys = [b for m in models for b in m["kv_curve"]["bytes"] if b > 0]
    return (min(xs), max(xs)), (min(ys or [1]), max(ys or [2]))


def _place(labels: list[tuple[float, float, float]], gap: float) -> list[float]:
    """Heights for labels given as (x start, x end, y), all in log2 units: each starts at its
    own y and is pushed up, lowest first, until it is `gap` clear of every label placed before
    it that it overlaps horizontally."""
    placed: list[tuple[float, float, float]] = []
    out = [0.0] * len(labels)
    for i in sorted(range(len(labels)), key=lambda i: labels[i][2]):
        x0, x1, y = labels[i]
        while True:
            # 0.999: a label put exactly `gap` above another must not hit it again by rounding
            hit = [py for px0, px1, py in placed if px0 < x1 and x0 < px1 and abs(py - y) < gap * 0.999]
            if not hit:
                break
            y = max(hit) + gap
        placed.append((x0, x1, y))
        out[i] = y
    return out


def figure(data: dict[str, Any], indices: list[int], title: str, size: tuple[float, float]):
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator

    models = data["models"]
    (x0, x1), (y0, y1) = _limits(models)
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
    ends = []
    for n, i in enumerate(indices):
        m = models[i]
        c = m["kv_curve"]
        color = colors[n % len(colors)]
        style = ("-", "--", "-.")[(n // len(colors)) % 3]
        (line,) = ax.plot(c["tokens"], c["bytes"], lw=1.8, color=color, ls=style,
                          marker="o" if len(c["tokens"]) == 1 else None)
        line.set_gid(f"kv-{m['name']}")
        for cap in c["caps"]:
            ax.plot([cap["tokens"]], [cap["bytes"]], marker="o", ms=6, mfc="white", mec=color, mew=1.5, zorder=3)
        ends.append((c["tokens"][-1], max(c["bytes"][-1], 1), m["name"] + ("" if m["verified"] else "*"), color))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlim(x0, x1 * 1.25)  # the names go right of the axes; constrained layout makes room
    ax.set_ylim(y0 / 1.5, y1 * 1.5)
    # label sizes in log2 units of each axis (the axes take roughly 70% of the figure each way)
    ylo, yhi = math.log2(y0 / 1.5), math.log2(y1 * 1.5)
    per_pt_y = (yhi - ylo) / (size[1] * 72 * 0.72)
    per_pt_x = math.log2(x1 * 1.25 / x0) / (size[0] * 72 * 0.7)
    boxes = [(math.log2(x) + 0.1, math.log2(x) + 0.1 + per_pt_x * FONT * 0.6 * len(name), math.log2(y))
             for x, y, name, _ in ends]
    placed = _place(boxes, per_pt_y * FONT * 1.3)
    for (x, y, name, color), (bx, _, by), ly in zip(ends, boxes, placed):
        moved = abs(ly - by) > per_pt_y * 2
        ax.annotate(name, (x, y), xytext=(2**bx, 2**ly), textcoords="data", fontsize=FONT, color=color,
                    va="center", ha="left", annotation_clip=False,
                    arrowprops=dict(arrowstyle="-", color=color, lw=0.6, shrinkA=0, shrinkB=2) if moved else None)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_tokens(int(v)) if 1 <= v <= x1 else ""))
    ax.yaxis.set_major_locator(LogLocator(base=2, numticks=12))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: re.sub(r"\.0+ ", " ", fmt_bytes(v))))
    ax.tick_params(labelsize=FONT)
    ax.set_xlabel("context (tokens per sequence)", fontsize=FONT + 1)
    ax.set_ylabel(f"KV cache ({data['dtype']}, batch {data['batch']})", fontsize=FONT + 1)
    ax.grid(True, which="major", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=FONT + 2, loc="left")
    return fig


def figures(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """(title, figure) per plot: one large plot, or one small plot per family."""
    parts = groups(data["models"])
    if len(parts) == 1:
        return [("", figure(data, parts[0][1], "", (9.0, 5.4)))]
    return [(family, figure(data, ix, family, (5.6, 3.6))) for family, ix in parts]
