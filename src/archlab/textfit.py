"""Plain text that fits a terminal: tables whose cells wrap, and whose columns move to a
second page when they cannot all fit, and free text wrapped with a hanging indent.

The promise every function here keeps: no line is longer than `width` (for any width of 20
or more). Words are wrapped whole when they fit; a word longer than a whole column (a long
name at a very narrow width) is broken, never dropped. Numbers are single words no wider
than a column can be, so they are moved, never cut.
"""

from __future__ import annotations

import textwrap

__all__ = ["render_table", "wrap_line", "wrap_lines"]

MIN_WIDTH = 20  # below this nothing readable fits; callers' option parsers refuse less


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, max(1, width), break_on_hyphens=False) or [""]


def _count_lines(words: list[int], width: int) -> int:
    """Lines that greedy wrapping (textwrap's) makes of words of these lengths."""
    lines, used = 1, -1
    for n in words:
        n = min(n, width)
        if used + 1 + n > width and used >= 0:
            lines, used = lines + 1, n
        else:
            used += 1 + n
    return lines


def _longest_word(cells: list[str]) -> int:
    return max([len(w) for c in cells for w in c.split()] or [1])


def _fit(columns: list[list[str]], budget: int, floor: list[int]) -> list[int]:
    """Column widths within `budget` (at least sum(floor)) that make the table as short as can
    be: starting from `floor`, the room goes, a few characters at a time, to the column whose
    widening saves the most lines per character. A long cell in one row then costs that row
    a few lines instead of squeezing every other column."""
    natural = [max(f, max(len(c) for c in col)) for f, col in zip(floor, columns)]
    if sum(natural) <= budget:
        return natural
    words = [[[len(w) for w in cell.split()] or [0] for cell in col] for col in columns]
    lines = [[[_count_lines(ws, w) for ws in col] for w in range(floor[c], natural[c] + 1)] for c, col in enumerate(words)]
    widths, spare, rows, ncol = floor[:], budget - sum(floor), len(columns[0]), len(columns)
    while spare > 0:
        now = [lines[c][widths[c] - floor[c]] for c in range(ncol)]
        best = None
        for c in range(ncol):
            others = [max([now[k][r] for k in range(ncol) if k != c] or [1]) for r in range(rows)]
            base = sum(max(o, x) for o, x in zip(others, now[c]))
            for d in range(1, min(spare, natural[c] - widths[c]) + 1):
                cost = sum(max(o, x) for o, x in zip(others, lines[c][widths[c] - floor[c] + d]))
                if cost < base:
                    if best is None or (base - cost) / d > best[0]:
                        best = ((base - cost) / d, c, d)
                    break
        if best is None:
            break
        widths[best[1]] += best[2]
        spare -= best[2]
    return widths


def _pages(floors: list[int], first: int, width: int, gap: int) -> list[list[int]]:
    """Columns (indices into floors) split into pages that each fit beside the first column:
    in their order, a new page whenever the next column's narrowest width would not fit."""
    pages: list[list[int]] = [[]]
    used = first
    for i, f in enumerate(floors):
        if pages[-1] and used + gap + f > width:
            pages.append([])
            used = first
        pages[-1].append(i)
        used += gap + f
    return pages


def render_table(header: list[str], rows: list[list[str]], width: int, gap: int = 2,
                 whole: bool = False) -> list[str]:
    """A plain-text table no wider than `width`. Cells wrap at word boundaries; an empty
    first cell marks a continued row. The first column (labels or names) wraps only past a
    third of the width. Columns that cannot all fit beside it, even at their longest word,
    go on further pages (each repeating the first column), separated by a blank line.
    whole: the body's cells are never wrapped (numbers with their units: "288.0 MiB"), so
    their columns move to a further page instead."""
    width = max(width, MIN_WIDTH)
    columns = [[r[i] for r in [header, *rows]] for i in range(len(header))]
    first = min(max(len(c) for c in columns[0]), max(_longest_word(columns[0]), width // 3), width // 2)
    room = width - first - gap
    floors = [min(max(_longest_word(col[:1]), *(len(c) for c in col[1:])) if whole and len(col) > 1
                  else _longest_word(col), room) for col in columns[1:]]
    out: list[str] = []
    for n, page in enumerate(_pages(floors, first, width, gap)):
        cols = [columns[i + 1] for i in page]
        widths = [first, *_fit(cols, width - first - gap * len(page), [floors[i] for i in page])]
        if n:
            out.append("")
        out += _render_page([columns[0], *cols], widths, gap)
    return out


def _render_page(columns: list[list[str]], widths: list[int], gap: int) -> list[str]:
    def lines_of(row: list[str]) -> list[str]:
        cols = [_wrap(c, w) for c, w in zip(row, widths)]
        height = max(len(c) for c in cols)
        return [
            (" " * gap).join((c[k] if k < len(c) else "").ljust(w) for c, w in zip(cols, widths)).rstrip()
            for k in range(height)
        ]

    rows = [list(r) for r in zip(*columns)]
    return [*lines_of(rows[0]), (" " * gap).join("-" * w for w in widths), *(x for r in rows[1:] for x in lines_of(r))]


def wrap_line(line: str, width: int, hang: int | None = None) -> list[str]:
    """One line wrapped to `width`, its own indentation kept and the continuation lines
    indented under where its text starts after a run of two spaces ("  label  text"), or by
    `hang` more than the line's own indentation."""
    width = max(width, MIN_WIDTH)
    if len(line) <= width:
        return [line]
    stripped = line.lstrip(" ")
    lead = len(line) - len(stripped)
    if hang is None:
        gap = stripped.find("  ")
        body = len(stripped) - len(stripped[gap:].lstrip(" ")) if gap > 0 else 0
        hang = body if 0 < body <= width // 2 else 4
    indent = " " * min(lead + hang, width // 2)
    return textwrap.wrap(line, width, initial_indent="", subsequent_indent=indent, break_on_hyphens=False,
                         drop_whitespace=True) or [""]


def wrap_lines(lines: list[str], width: int, hang: int | None = None) -> list[str]:
    """Every line of `lines` (each may hold newlines) wrapped to `width`; see wrap_line."""
    return [out for block in lines for line in block.split("\n") for out in wrap_line(line, width, hang)]
