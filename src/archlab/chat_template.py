"""Chat templates (jinja2, as HF's apply_chat_template renders them), run as untrusted code.

A chat template comes with a checkpoint (tokenizer_config.json, a GGUF's tokenizer.chat_template),
so a hostile file could loop, build a 10 GB string or recurse. It runs in jinja's immutable sandbox
(HF uses the same one, so `range()` keeps jinja's own cap of sandbox.MAX_RANGE = 100000 items and
output stays equal to HF's) with limits HF does not have:
  - every template line executed counts against a step budget (sys.settrace on the template's
    own frames only), which stops nested loops and runaway recursion alike;
  - `*`, `**`, `+`, `%` and `~` are checked before (or, for `~`, just after) they build a value
    larger than _MAX_CHARS characters / items, or an integer of more than _MAX_INT_BITS bits;
  - calls and filters refuse a width / count argument over _MAX_CHARS (`center(10**10)`,
    "{:>9999999999}".format), and the output stops at _MAX_CHARS characters.
Any of these, and a template's own `raise_exception(...)`, is a ChatTemplateError naming the
template's source and what happened, never a jinja traceback.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

__all__ = ["ChatTemplateError", "compile_template", "render"]

# A conversation of ~5M tokens renders to ~20M characters: far above any real use, far below harm.
_MAX_CHARS = 20_000_000
_MAX_INT_BITS = 1_000_000
# Real templates run tens of lines per message (Qwen3's with tools: ~60); the budget grows with the
# conversation so that no real conversation reaches it.
_MAX_STEPS = 5_000_000  # ~1 s of template code under the tracer
_STEPS_PER_MESSAGE = 2_000
# A width in a format string: "%99999999s", "{:>99999999}" (>= 10**7, worth parsing).
_WIDTHS = re.compile(r"%[#0\- +]*(\d{8,})|\{[^{}]*:[^{}]*?(\d{8,})[^{}]*\}")
# str methods and jinja filters whose arguments set the result's size
_WIDTH_METHODS = frozenset(("center", "ljust", "rjust", "zfill", "expandtabs"))
_WIDTH_FILTERS = frozenset(("center", "indent", "wordwrap", "format"))


class ChatTemplateError(ValueError):
    """A chat template that failed or was stopped; the message names the template's source."""


class _Stopped(Exception):
    """A limit was reached; render() adds the source."""


class _Raised(Exception):
    """The template called raise_exception(message)."""


def _check_size(n: int, what: str) -> None:
    if n > _MAX_CHARS:
        raise _Stopped(f"{what} would hold {n} characters or items (limit {_MAX_CHARS})")


def _check_widths(values, what: str) -> None:
    for a in values:
        if isinstance(a, int) and not isinstance(a, bool) and a > _MAX_CHARS:
            raise _Stopped(f"{what} was given a width of {a}, over the limit of {_MAX_CHARS} characters")
        if isinstance(a, str) and any(int(w or v) > _MAX_CHARS for w, v in _WIDTHS.findall(a)):
            raise _Stopped(f"{what} was given a format width over the limit of {_MAX_CHARS} characters")


def _check_filter(f):
    # the filtered value comes after the context / eval context / environment jinja passes first
    first = 2 if getattr(f, "jinja_pass_arg", None) else 1

    @functools.wraps(f)  # keeps jinja's pass_context / pass_eval_ctx marks
    def checked(*args, **kwargs):
        # `format`'s widths are in its value, the format string; its arguments are data
        widths = args[first - 1:first] if f.__name__ == "do_format" else (*args[first:], *kwargs.values())
        _check_widths(widths, f"filter {f.__name__}")
        return f(*args, **kwargs)

    return checked


@lru_cache(maxsize=16)
def compile_template(template: str):
    import jinja2
    from jinja2 import nodes
    from jinja2.compiler import CodeGenerator
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        # `{% generation %}...{% endgeneration %}` marks assistant text for training masks in
        # HF's renderer; for rendering it is transparent.
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    class CheckedConcat(CodeGenerator):
        # `a ~ b` compiles to a plain str join the sandbox never sees; route it through the check.
        def visit_Concat(self, node, frame):
            self.write("environment.checked_text(")
            super().visit_Concat(node, frame)
            self.write(")")

    class Limited(ImmutableSandboxedEnvironment):
        code_generator_class = CheckedConcat
        intercepted_binops = frozenset(("*", "**", "+", "%"))

        def checked_text(self, s):
            _check_size(len(s), "a joined string (~)")
            return s

        def call_binop(self, context, operator, left, right):
            ints = all(isinstance(x, int) for x in (left, right))
            if operator == "*":
                if ints:
                    if left and right and abs(left).bit_length() + abs(right).bit_length() > _MAX_INT_BITS:
                        raise _Stopped(f"an integer product would pass {_MAX_INT_BITS} bits")
                else:
                    for seq, n in ((left, right), (right, left)):
                        if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                            _check_size(len(seq) * n, "a repeated string or list (*)")
            elif operator == "**" and ints and abs(left) > 1 and right > 0:
                if abs(left).bit_length() * right > _MAX_INT_BITS:
                    raise _Stopped(f"{left} ** {right} would pass {_MAX_INT_BITS} bits")
            elif operator == "+" and all(isinstance(x, (str, list, tuple)) for x in (left, right)):
                _check_size(len(left) + len(right), "a sum of strings or lists (+)")
            elif operator == "%" and isinstance(left, str):
                _check_widths((left,), "a % format")
            return super().call_binop(context, operator, left, right)

        def wrap_str_format(self, value):
            # jinja sandboxes str.format at attribute access (this hook), not in call()
            owner, name = getattr(value, "__self__", None), getattr(value, "__name__", None)
            if isinstance(owner, str) and name in ("format", "format_map"):
                _check_widths((owner,), f"str.{name}()")
            return super().wrap_str_format(value)

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja's own signature)
            name, owner = getattr(__obj, "__name__", None), getattr(__obj, "__self__", None)
            if isinstance(owner, str) and name in _WIDTH_METHODS:
                _check_widths((*args, *kwargs.values()), f"str.{name}()")
            if isinstance(owner, str) and name == "replace" and args:
                s, old, new = __obj.__self__, str(args[0]), str(args[1]) if len(args) > 1 else ""
                hits = s.count(old) if old else len(s) + 1
                _check_size(len(s) + hits * (len(new) - len(old)), "str.replace's result")
            return super().call(__context, __obj, *args, **kwargs)

    def raise_exception(message: str):
        raise _Raised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # jinja's own tojson escapes <, >, & for HTML; chat templates want the JSON as written.
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = Limited(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.filters.update({name: _check_filter(env.filters[name]) for name in _WIDTH_FILTERS})
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(template)
    except jinja2.TemplateSyntaxError as e:
        raise ChatTemplateError(f"chat template: syntax error at line {e.lineno}: {e.message}") from None


@contextmanager
def _step_budget(steps: int):
    """Counts the lines the template's own code runs (jinja compiles it to Python whose file is
    '<template>'); other frames are not traced, so jinja's and Python's own code runs at full speed."""
    left = steps

    def line(frame, event, arg):
        nonlocal left
        if event == "line":
            left -= 1
            if left < 0:
                raise _Stopped(f"it ran more than {steps} template steps (an endless or huge loop, or runaway recursion?)")
        return line

    def call(frame, event, arg):
        return line if frame.f_code.co_filename == "<template>" else None

    previous = sys.gettrace()
    sys.settrace(call)
    try:
        yield
    finally:
        sys.settrace(previous)


def render(template: str, source: str, **variables: Any) -> str:
    """The template rendered with `variables`, within the limits above."""
    import jinja2

    try:
        compiled = compile_template(template)
    except ChatTemplateError as e:  # its message names the line, not the file the template came from
        raise ChatTemplateError(f"{source}: {e}") from None
    budget = _MAX_STEPS + _STEPS_PER_MESSAGE * len(variables.get("messages") or ())
    out, n = [], 0
    try:
        with _step_budget(budget):
            for piece in compiled.generate(**variables):
                n += len(piece)
                if n > _MAX_CHARS:
                    raise _Stopped(f"its output passed {_MAX_CHARS} characters")
                out.append(piece)
    except _Raised as e:
        raise ChatTemplateError(f"{source}: the chat template raised an error: {e}") from None
    except _Stopped as e:
        raise ChatTemplateError(f"{source}: the chat template was stopped: {e}") from None
    except RecursionError:
        raise ChatTemplateError(f"{source}: the chat template recursed too deeply (a macro that calls itself without end?)") from None
    except OverflowError as e:  # jinja's safe_range: "Range too big..."
        raise ChatTemplateError(f"{source}: the chat template was stopped: {e}") from None
    except jinja2.TemplateError as e:
        raise ChatTemplateError(f"{source}: the chat template failed: {type(e).__name__}: {e}") from None
    return "".join(out)
