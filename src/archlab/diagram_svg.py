"""diagram.Layout drawn as a standalone SVG: the same boxes as the terminal drawing, in
colour, with the residual stream as a rail on the left and the layer plan as a strip of cells.

No external resources (fonts are generic families, the arrowhead is a local marker), and
every text fits its box: lines are wrapped at the width a monospace font gives them
(CHAR_W per character), which tests/test_diagram.py holds against the viewBox.
"""

from __future__ import annotations

import textwrap
from xml.sax.saxutils import escape

from .diagram import Box, Layout

WIDTH = 900
FONT = 12
# The advance of a 12 px monospace glyph: 0.602 em in DejaVu Sans Mono and Liberation Mono,
# rounded up so that a wrapped line never overflows its box.
CHAR_W = 7.4
LINE = 16
PAD = 8
RAIL_X = 40
BRANCH_X = 90
RIGHT = WIDTH - 24
FILL = {"input": "#eeeeee", "embedding": "#e8dcf5", "norm": "#fff4c2", "attention": "#d6e8fa",
        "ffn": "#d8f0d2", "head": "#e8dcf5", "layers": "#ffffff", "numbers": "#f6f6f6"}
# the layer strip's cells, by the layer map's letter (lowercase dense FFN, uppercase MoE)
CELL = {"g": "#4a90d9", "s": "#9cc7ef", "c": "#7fb0a8", "m": "#8e6cc0", "l": "#e0a040"}


def wrap(box: Box, width: float) -> list[str]:
    """The box's lines as drawn in a box `width` pixels wide (the title first)."""
    n = int((width - 2 * PAD) // CHAR_W)
    out = textwrap.wrap(box.title, n) or [""]
    for line in box.lines:
        out += textwrap.wrap(line, n, subsequent_indent="  ", break_on_hyphens=False) or [""]
    return out


class _Svg:
    def __init__(self) -> None:
        self.back: list[str] = []  # drawn first: rails and connectors
        self.items: list[str] = []

    def text(self, x: float, y: float, s: str, bold: bool = False, size: int = FONT, anchor: str = "start") -> None:
        w = ' font-weight="bold"' if bold else ""
        a = f' text-anchor="{anchor}"' if anchor != "start" else ""
        self.items.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}"{w}{a}>{escape(s)}</text>')

    def line(self, pts: list[tuple[float, float]], arrow: bool = False, dash: bool = False) -> None:
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        extra = (' marker-end="url(#arrow)"' if arrow else "") + (' stroke-dasharray="4 3"' if dash else "")
        self.back.append(f'<polyline points="{d}" fill="none" stroke="#555" stroke-width="1.5"{extra}/>')

    def box(self, b: Box, x: float, y: float, w: float) -> float:
        """Draws `b` with its top-left at (x, y); returns its height."""
        lines = wrap(b, w)
        h = PAD + LINE * len(lines) + PAD // 2
        self.items.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h}" rx="6" '
                          f'fill="{FILL.get(b.part, "#fff")}" stroke="#777"/>')
        for i, s in enumerate(lines):
            self.text(x + PAD, y + PAD + LINE * i + FONT - 1, s, bold=i == 0)
        return h

    def add(self, x: float, y: float) -> None:
        self.items.append(f'<circle cx="{x}" cy="{y:.1f}" r="8" fill="#fff" stroke="#555" stroke-width="1.5"/>')
        self.items.append(f'<path d="M{x - 5},{y:.1f} h10 M{x},{y - 5:.1f} v10" stroke="#555" stroke-width="1.5"/>')


def render(lay: Layout) -> str:
    s = _Svg()
    y = 10.0
    for line in textwrap.wrap(lay.title, int((WIDTH - 40) // (CHAR_W * 14 / FONT))):  # a long name wraps
        s.text(20, y + 14, line, bold=True, size=14)
        y += 18
    y += 12
    gap = 18
    for b in lay.before:
        y += s.box(b, 20, y, RIGHT - 20)
        s.line([(RAIL_X, y), (RAIL_X, y + gap)], arrow=True)
        y += gap
    top = y
    y += 28  # the block's title
    f1 = BRANCH_X + 30
    branch_from = y
    for i, step in enumerate(lay.block):
        if step.kind == "split":
            s.line([(RAIL_X, y), (f1, y), (f1, y + gap)], arrow=True)
            branch_from = y
            y += gap
        elif step.kind == "add":
            s.line([(f1, y), (f1, y + 10), (RAIL_X + 8, y + 10)], arrow=True)
            s.add(RAIL_X, y + 10)
            y += 10 + 8 + gap
        elif step.kind == "box" and _on_rail(lay, i):
            y += s.box(step.boxes[0], 20, y, RIGHT - 20)
            s.line([(RAIL_X, y), (RAIL_X, y + gap)], arrow=True)
            y += gap
        elif step.kind == "box":
            y += s.box(step.boxes[0], BRANCH_X, y, RIGHT - BRANCH_X)
            if i + 1 < len(lay.block) and lay.block[i + 1].kind == "box":
                s.line([(f1, y), (f1, y + gap)], arrow=True)
                y += gap
        else:  # parallel
            mid = (BRANCH_X + RIGHT) / 2
            f2 = mid + 30
            s.line([(RAIL_X, y), (f1, y), (f1, y + gap)], arrow=True)
            s.line([(f1, y), (f2, y), (f2, y + gap)], arrow=True)
            branch_from = y
            y += gap
            ends = []
            for boxes, x, w, f in ((step.boxes, BRANCH_X, mid - BRANCH_X - 10, f1), (step.right, mid + 10, RIGHT - mid - 10, f2)):
                yy = y
                for k, b in enumerate(boxes):
                    yy += s.box(b, x, yy, w)
                    if k + 1 < len(boxes):
                        s.line([(f, yy), (f, yy + gap)], arrow=True)
                        yy += gap
                ends.append(yy)
            y = max(ends)
            s.line([(f2, ends[1]), (f2, y + 10), (f1, y + 10)])
            s.line([(f1, ends[0]), (f1, y + 10), (RAIL_X + 8, y + 10)], arrow=True)
            s.add(RAIL_X, y + 10)
            y += 10 + 8 + gap
    s.line([(RAIL_X, top), (RAIL_X, y)])  # the residual stream, behind the boxes
    s.back.insert(0, f'<rect x="8" y="{top - 6:.1f}" width="{WIDTH - 16}" height="{y - top + 6:.1f}" rx="10" '
                      f'fill="#fbfbff" stroke="#99a" stroke-dasharray="6 4"/>')
    s.text(RAIL_X + 16, top + 14, lay.block_title, bold=True, size=13)
    s.line([(RAIL_X, y), (RAIL_X, y + gap)], arrow=True)
    y += gap
    for k, b in enumerate(lay.after):
        y += s.box(b, 20, y, RIGHT - 20)
        if k + 1 < len(lay.after):
            s.line([(RAIL_X, y), (RAIL_X, y + gap)], arrow=True)
            y += gap
    y += gap
    y += _strip(s, lay, y) + gap
    y += s.box(lay.numbers, 20, y, RIGHT - 20) + 12
    h = int(y)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{h}" viewBox="0 0 {WIDTH} {h}" '
            f'font-family="DejaVu Sans Mono, Liberation Mono, Menlo, Consolas, monospace">')
    defs = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>')
    bg = f'<rect width="{WIDTH}" height="{h}" fill="#ffffff"/>'
    return "\n".join([head, defs, bg, *s.back, *s.items, "</svg>"]) + "\n"


def _on_rail(lay: Layout, i: int) -> bool:
    prev = lay.block[i - 1].kind if i else "add"
    return prev == "add" or (i + 1 < len(lay.block) and lay.block[i + 1].kind == "split")


def _strip(s: _Svg, lay: Layout, y: float) -> float:
    """The layer plan: one cell per layer, 30 to a row, lettered as `archlab inspect`'s map."""
    b = lay.strip
    # layer_map's rows: "start  letters" in groups of ten, each letter row followed by a NoPE
    # row of ^ (trailing spaces stripped) where there are NoPE layers
    cells = lambda r: "".join(ch for i, ch in enumerate(r[7:]) if i % 11 != 10)  # noqa: E731
    letters = "".join(cells(r) for r in b.lines if r[:6].strip().isdigit())
    nope = "".join(cells(r).ljust(len(cells(prev))) for prev, r in zip(b.lines, b.lines[1:]) if r.startswith(" NoPE"))
    per, cell = 30, 24
    title = wrap(Box(b.key, b.part, b.title), RIGHT - 20)
    legend = wrap(Box(b.key, b.part, b.lines[-1].strip()), RIGHT - 20)
    n_rows = -(-len(letters) // per)
    h = PAD + LINE * len(title) + n_rows * (cell + 4) + LINE * len(legend) + PAD
    s.items.append(f'<rect x="20" y="{y:.1f}" width="{RIGHT - 20}" height="{h}" rx="6" fill="#fff" stroke="#777"/>')
    for i, t in enumerate(title):
        s.text(20 + PAD, y + PAD + LINE * i + FONT - 1, t, bold=i == 0)
    y0 = y + PAD + LINE * len(title) + 2
    for i, ch in enumerate(letters):
        cx, cy = 20 + PAD + 44 + (i % per) * cell, y0 + (i // per) * (cell + 4)
        if i % per == 0:
            s.text(20 + PAD, cy + 15, str(i), size=11)
        stroke = ' stroke="#222" stroke-width="2"' if ch.isupper() else ' stroke="#fff"'
        s.items.append(f'<rect x="{cx}" y="{cy:.1f}" width="{cell - 2}" height="{cell - 2}" rx="3" '
                       f'fill="{CELL.get(ch.lower(), "#ccc")}"{stroke}/>')
        s.text(cx + (cell - 2) / 2, cy + 15, ch + ("^" if nope[i:i + 1] == "^" else ""), size=11, anchor="middle")
    yl = y0 + n_rows * (cell + 4)
    for i, t in enumerate(legend):
        s.text(20 + PAD, yl + LINE * i + FONT - 1, t)
    return h
