"""The size limits of chat templates (chat_template.py): estimates of how much text a value
turns into, and checks run before an operator, call or filter builds more than _MAX_CHARS
characters. Split out of chat_template.py, which wires them into jinja's sandbox."""

from __future__ import annotations

import functools
import re

# A conversation of ~5M tokens renders to ~20M characters: far above any real use, far below harm.
_MAX_CHARS = 20_000_000
_MAX_INT_BITS = 1_000_000
# A width in a format string: "%99999999s", "{:>99999999}" (>= 10**7, worth parsing).
_WIDTHS = re.compile(r"%[#0\- +]*(\d{8,})|\{[^{}]*:[^{}]*?(\d{8,})[^{}]*\}")
_NESTED_FIELD = re.compile(r"\{[^{}]*\{")
# str methods and jinja filters whose arguments set the result's size
_WIDTH_METHODS = frozenset(("center", "ljust", "rjust", "zfill", "expandtabs"))
_WIDTH_FILTERS = frozenset(("center", "indent", "wordwrap", "format"))
# filters whose time grows with the square of their input (textwrap's long-word splitting,
# striptags' and urlize's regexes on '<<<<...'): refused on more than this many characters
_QUADRATIC_FILTERS = frozenset(("wordwrap", "striptags", "urlize"))
_QUADRATIC_MAX = 100_000
# lipsum(n, min, max) writes n paragraphs of up to max words of up to 14 characters (jinja2.utils)
_LIPSUM_WORD = 16


class _Stopped(Exception):
    """A limit was reached; render() adds the source."""


def _check_size(n: int, what: str) -> None:
    if n > _MAX_CHARS:
        raise _Stopped(f"{what} would hold {n} characters or items (limit {_MAX_CHARS})")


def _check_widths(values, what: str) -> None:
    for a in values:
        if isinstance(a, int) and not isinstance(a, bool) and a > _MAX_CHARS:
            raise _Stopped(f"{what} was given a width of {a}, over the limit of {_MAX_CHARS} characters")
        if isinstance(a, str) and any(int(w or v) > _MAX_CHARS for w, v in _WIDTHS.findall(a)):
            raise _Stopped(f"{what} was given a format width over the limit of {_MAX_CHARS} characters")


def _weight(value, limit: int = _MAX_CHARS, depth: int = 0) -> int:
    """About how many characters str(value) has, counted only until past `limit`: a list can hold
    one 20M-character string 200 times at the cost of 200 pointers, and joining, formatting or
    printing it would build a 4 GB string."""
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3 + 2
    if depth > 8 or not isinstance(value, (list, tuple, dict, set, frozenset)):
        return 24
    total = 2 + 2 * len(value)  # a separator per item at least: a long list is refused without a walk
    if total > limit:
        return total
    for item in (value.items() if isinstance(value, dict) else value):
        total += _weight(item, limit - total, depth + 1)
        if total > limit:
            break
    return total


def _materialized(value, what: str):
    """An iterator (a map or select filter's result) as a list, stopped once its items would pass
    the size limit, so a filter that consumes it cannot build more than that."""
    if isinstance(value, (str, bytes, bytearray, list, tuple, dict, set, frozenset)) or not hasattr(value, "__next__"):
        return value
    items, total = [], 0
    for item in value:
        total += _weight(item, _MAX_CHARS - total) + 2
        if total > _MAX_CHARS:
            raise _Stopped(f"{what} was given more than {_MAX_CHARS} characters of items")
        items.append(item)
    return iter(items)


def _check_weight(values, what: str, per_field: int = 1) -> None:
    total = 0
    for v in values:
        total += _weight(v, _MAX_CHARS - total)
        if total * per_field > _MAX_CHARS:
            raise _Stopped(f"{what} would build more than {_MAX_CHARS} characters")


def _fields(fmt) -> int:
    return 1 + (fmt.count("{") + fmt.count("%") if isinstance(fmt, str) else 0)


def _check_join(sep, items: list, what: str) -> None:
    _check_weight(items, what)
    _check_size(len(str(sep)) * max(len(items) - 1, 0) + _weight(items), what)


def _check_filter(f):
    # the filtered value comes after the context / eval context / environment jinja passes first
    first = 2 if getattr(f, "jinja_pass_arg", None) else 1

    name = f.__name__.removeprefix("sync_").removeprefix("do_")

    @functools.wraps(f)  # keeps jinja's pass_context / pass_eval_ctx marks
    def checked(*args, **kwargs):
        what = f"filter {name}"
        args = (*args[:first - 1], *(_materialized(a, what) for a in args[first - 1:]))
        data = (*args[first - 1:], *kwargs.values())
        if name in _WIDTH_FILTERS:
            # `format`'s widths are in its value, the format string; its arguments are data
            _check_widths(args[first - 1:first] if name == "format" else data[1:], what)
        if name == "join" and data:
            items = list(data[0])
            _check_join(data[1] if len(data) > 1 else kwargs.get("d", ""), items, what)
            args = (*args[:first - 1], items, *args[first:])
        elif name == "replace" and len(data) >= 2:
            s = str(data[0])
            hits = s.count(str(data[1])) if str(data[1]) else len(s) + 1
            _check_size(len(s) + hits * _weight(data[2] if len(data) > 2 else ""), what)
        elif name in _QUADRATIC_FILTERS and data and len(str(data[0])) > _QUADRATIC_MAX:
            raise _Stopped(f"{what} was given {len(str(data[0]))} characters; over {_QUADRATIC_MAX} it takes quadratic time")
        _check_weight(data, what, _fields(data[0]) if name == "format" and data else 1)
        return f(*args, **kwargs)

    return checked
