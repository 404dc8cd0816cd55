"""--width: no line that compare, presets or inspect prints is longer than the width, and no
cell's words are lost on the way (a column that cannot fit moves to a further page)."""

from __future__ import annotations

import contextlib
import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archlab
from archlab.cli import main
from archlab.textfit import render_table, wrap_lines

PRESETS = archlab.presets()
WIDTHS = st.integers(60, 200)
# 1 model (rows of parts), 3 (columns of models), 9 (one model per row, in two tables), all of them
MODEL_SETS = st.one_of(
    st.lists(st.sampled_from(PRESETS), min_size=1, max_size=1),
    st.lists(st.sampled_from(PRESETS), min_size=3, max_size=3, unique=True),
    st.lists(st.sampled_from(PRESETS), min_size=9, max_size=9, unique=True),
    st.just(["--all"]),
)


def _lines(argv: list[str]) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # not capsys: hypothesis runs many inputs per fixture
        assert main(argv) == 0
    return out.getvalue().splitlines()


def _too_long(lines: list[str], width: int) -> list[str]:
    return [line for line in lines if len(line) > width]


@settings(max_examples=30, deadline=None)
@given(width=WIDTHS, models=MODEL_SETS, notes=st.booleans())
def test_compare_fits_the_width(width, models, notes):
    lines = _lines(["compare", *models, "--width", str(width), *([] if notes else ["--no-notes"])])
    assert not _too_long(lines, width)


@settings(max_examples=15, deadline=None)
@given(width=WIDTHS)
def test_presets_fits_the_width(width):
    lines = _lines(["presets", "--width", str(width)])
    assert not _too_long(lines, width)
    text = "\n".join(lines)
    for name in PRESETS:  # every preset is listed, whole
        assert re.search(rf"(^|\s){re.escape(name)}\*?(\s|$)", text, re.M), name


@settings(max_examples=25, deadline=None)
@given(width=WIDTHS, name=st.sampled_from(PRESETS))
def test_inspect_plan_fits_the_width(width, name):
    assert not _too_long(_lines(["inspect", name, "--plan", "--width", str(width)]), width)


@pytest.mark.slow  # builds on the meta device: imports torch
@pytest.mark.parametrize("name", ["deepseek-v3", "qwen3-next-80b-a3b"])
def test_inspect_module_tree_fits_the_width(name):
    assert not _too_long(_lines(["inspect", name, "--width", "60"]), 60)


def test_compare_numbers_move_to_a_second_page_whole():
    """At 60 columns the one-model-per-row table cannot hold every number: the columns that do
    not fit go to a further page that repeats the names, and every number is printed whole."""
    from archlab.describe import describe

    lines = _lines(["compare", "--all", "--width", "60", "--no-notes"])
    text = "\n".join(lines)
    headers = [line for line in lines if line.startswith("model ")]
    assert len(headers) >= 3  # numbers split over pages, then the parts table
    for name in PRESETS:
        d = describe(name)
        for key in ("params", "active", "context", "kv_at", "flops"):
            number = d.parts[key].short.split(" (")[0]
            assert number in text, (name, key, number)


cells = st.text(st.characters(codec="ascii", categories=("L", "N", "P")), max_size=12).map(str.strip)
phrases = st.lists(cells, min_size=0, max_size=6).map(" ".join)


@settings(max_examples=100, deadline=None)
@given(width=st.integers(20, 200), ncols=st.integers(1, 9), data=st.data())
def test_render_table_fits_and_keeps_every_word(width, ncols, data):
    header = data.draw(st.lists(cells.filter(bool), min_size=ncols, max_size=ncols))
    rows = data.draw(st.lists(st.lists(phrases, min_size=ncols, max_size=ncols), max_size=6))
    lines = render_table(header, rows, width)
    assert not _too_long(lines, width)
    out = " ".join(lines)
    for cell in [*header, *(c for r in rows for c in r)]:
        for word in cell.split():
            if len(word) <= width // 3:  # a word longer than a whole column is broken, not lost
                assert word in out


def test_wrap_lines_keeps_the_text_and_the_width():
    text = "  label        " + " ".join(f"word{i}" for i in range(40))
    lines = wrap_lines([text], 40)
    assert not _too_long(lines, 40)
    assert " ".join(" ".join(lines).split()) == " ".join(text.split())
    assert all(line.startswith(" " * 15) for line in lines[1:])  # continued under the text, not the label


def test_width_below_the_minimum_is_refused(capsys):
    assert main(["compare", "gpt2", "--width", "10"]) == 2
    assert "--width" in capsys.readouterr().err
