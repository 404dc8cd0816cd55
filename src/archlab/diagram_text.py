"""diagram.Layout drawn in box-drawing characters (`archlab diagram`'s terminal output).

The residual stream runs down one column (RAIL); a branch leaves it at a split (├──┐), runs
through its boxes and comes back at an add ((+)◄──┘). Boxes on the stream itself (post-norm,
BLOOM's normed residual) sit across the rail. Every line is at most `width` columns.
"""

from __future__ import annotations

import textwrap

from .diagram import Box, Layout

RAIL = 4  # the residual stream's column
BRANCH = 8  # left edge of a branch's boxes; their arrows enter at BRANCH + 4


def _wrap(box: Box, inner: int) -> list[str]:
    out = textwrap.wrap(box.title, inner) or [""]
    for line in box.lines:
        out += textwrap.wrap(line, inner, subsequent_indent="  ", break_on_hyphens=False) or [""]
    return out


def _box(box: Box, width: int, top: int | None, bottom: int | None) -> list[str]:
    """The box `width` wide; an arrow enters the top border at column `top` and leaves the
    bottom at `bottom` (columns relative to the box), or none."""
    inner = width - 4
    t = ["─"] * (width - 2)
    b = ["─"] * (width - 2)
    if top is not None:
        t[top - 1] = "▼"
    if bottom is not None:
        b[bottom - 1] = "┬"
    rows = ["┌" + "".join(t) + "┐"]
    rows += [f"│ {s.ljust(inner)} │" for s in _wrap(box, inner)]
    rows.append("└" + "".join(b) + "┘")
    return rows


class _Canvas:
    def __init__(self, width: int) -> None:
        self.width = width
        self.rows: list[list[str]] = []

    def row(self, framed: bool, rail: bool = False) -> list[str]:
        r = [" "] * self.width
        if framed:
            r[0] = r[self.width - 1] = "│"
        if rail:
            r[RAIL] = "│"
        self.rows.append(r)
        return r

    def put(self, r: list[str], col: int, text: str) -> None:
        r[col : col + len(text)] = list(text)

    def text(self) -> str:
        return "\n".join("".join(r).rstrip() for r in self.rows)


def render(lay: Layout, width: int = 100) -> str:
    c = _Canvas(width)
    right = width - 4  # right edge (exclusive) of every box
    for line in textwrap.wrap(lay.title, width):  # a long name wraps
        c.put(c.row(False), 0, line)
    for i, b in enumerate(lay.before):
        for s in _box(b, right - 2, RAIL - 2 if i else None, RAIL - 2):
            c.put(c.row(False), 2, s)
    top = c.row(False)
    c.put(top, 0, "┌" + "─" * (width - 2) + "┐")
    top[RAIL] = "┼"
    c.put(top, RAIL + 2, f" {lay.block_title} ")
    f1 = BRANCH + 4
    for step in lay.block:
        if step.kind == "split":
            r = c.row(True)
            c.put(r, RAIL, "├" + "─" * (f1 - RAIL - 1) + "┐")
        elif step.kind == "add":
            r = c.row(True)
            c.put(r, RAIL - 1, "(+)◄" + "─" * (f1 - RAIL - 3) + "┘")
        elif step.kind == "box" and step.boxes[0].part == "norm" and _on_rail(lay, step):
            for s in _box(step.boxes[0], right - 2, RAIL - 2, RAIL - 2):
                c.put(c.row(True), 2, s)
        elif step.kind == "box":
            for s in _box(step.boxes[0], right - BRANCH, f1 - BRANCH, f1 - BRANCH):
                c.put(c.row(True, rail=True), BRANCH, s)
        else:  # parallel: two branches side by side
            mid = (BRANCH + right) // 2
            f2 = mid + 5
            r = c.row(True)
            c.put(r, RAIL, "├" + "─" * (f1 - RAIL - 1) + "┬" + "─" * (f2 - f1 - 1) + "┐")
            cols = [_stack(step.boxes, mid - 1 - BRANCH, f1 - BRANCH), _stack(step.right, right - mid - 1, f2 - mid - 1)]
            height = max(map(len, cols))
            for k, (col, f, x) in enumerate(zip(cols, (f1, f2), (BRANCH, mid + 1))):
                cols[k] = col + [" " * (f - x) + "│"] * (height - len(col))
            for a, b in zip(*cols):
                r = c.row(True, rail=True)
                c.put(r, BRANCH, a)
                c.put(r, mid + 1, b)
            r = c.row(True)
            c.put(r, RAIL - 1, "(+)◄" + "─" * (f1 - RAIL - 3) + "┴" + "─" * (f2 - f1 - 1) + "┘")
    c.row(True, rail=True)
    bottom = c.row(False)
    c.put(bottom, 0, "└" + "─" * (width - 2) + "┘")
    bottom[RAIL] = "┼"
    for i, b in enumerate(lay.after):
        last = i == len(lay.after) - 1
        for s in _box(b, right - 2, RAIL - 2, None if last else RAIL - 2):
            c.put(c.row(False), 2, s)
    for b in (lay.strip, lay.numbers):
        for s in _box(b, right - 2, None, None):
            c.put(c.row(False), 2, s)
    return c.text()


def _on_rail(lay: Layout, step) -> bool:
    """A norm box between an add and a split (post-norm, normed residual) sits on the stream."""
    i = lay.block.index(step)
    prev = lay.block[i - 1].kind if i else "add"
    return prev == "add" or (i + 1 < len(lay.block) and lay.block[i + 1].kind == "split")


def _stack(boxes: tuple[Box, ...], width: int, f: int) -> list[str]:
    out: list[str] = []
    for b in boxes:
        out += _box(b, width, f, f)
    return out
