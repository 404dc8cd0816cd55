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
    "{:>9999999999}".format), and the output stops at _MAX_CHARS characters;
  - what turns a value into text (output, `~`, join, format, `%`, tojson, every filter) first
    estimates its size (chat_limits._weight): a list may hold one 20M-character string 200 times;
  - filters whose time is quadratic in their input (wordwrap, striptags, urlize) take at most
    100k characters, lipsum at most _MAX_CHARS of text;
  - any other error of the template's own code (1 / 0, 'a' + 1) is named, not raised raw.
Any of these, and a template's own `raise_exception(...)`, is a ChatTemplateError naming the
template's source and what happened, never a jinja traceback.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

from .chat_limits import (
    _LIPSUM_WORD, _MAX_CHARS, _MAX_INT_BITS, _NESTED_FIELD, _WIDTH_METHODS, _check_filter, _check_join, _check_size,
    _check_weight, _check_widths, _fields, _materialized, _Stopped, _weight,
)

__all__ = ["ChatTemplateError", "compile_template", "render"]

# Real templates run tens of lines per message (Qwen3's with tools: ~60); the budget grows with the
# conversation so that no real conversation reaches it.
_MAX_STEPS = 5_000_000  # ~1 s of template code under the tracer
_STEPS_PER_MESSAGE = 2_000
class ChatTemplateError(ValueError):
    """A chat template that failed or was stopped; the message names the template's source."""


class _Raised(Exception):
    """The template called raise_exception(message)."""


@lru_cache(maxsize=16)
def compile_template(template: str):
    import jinja2
    from jinja2 import nodes
    from jinja2.compiler import CodeGenerator
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import generate_lorem_ipsum

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
        # Its parts are checked before they are turned into text: str() of a list holding one
        # big string many times is itself the huge allocation.
        def visit_Concat(self, node, frame):
            if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:  # never in our environment
                self.write("environment.checked_text(")
                super().visit_Concat(node, frame)
                self.write(")")
                return
            self.write("environment.checked_concat((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    class Limited(ImmutableSandboxedEnvironment):
        code_generator_class = CheckedConcat
        intercepted_binops = frozenset(("*", "**", "+", "%"))

        def checked_text(self, s):
            _check_size(len(s), "a joined string (~)")
            return s

        def checked_concat(self, parts):
            _check_weight(parts, "a joined string (~)")
            return "".join(map(str, parts))

        def call_binop(self, context, operator, left, right):
            ints = all(isinstance(x, int) for x in (left, right))
            if operator == "*":
                if ints:
                    if left and right and abs(left).bit_length() + abs(right).bit_length() > _MAX_INT_BITS:
                        raise _Stopped(f"an integer product would pass {_MAX_INT_BITS} bits")
                else:
                    for seq, n in ((left, right), (right, left)):
                        if isinstance(seq, (str, bytes, list, tuple)) and isinstance(n, int) and n > 0:
                            _check_size(_weight(seq) * n if seq else 0, "a repeated string or list (*)")
            elif operator == "**" and ints and abs(left) > 1 and right > 0:
                if abs(left).bit_length() * right > _MAX_INT_BITS:
                    raise _Stopped(f"{left} ** {right} would pass {_MAX_INT_BITS} bits")
            elif operator == "+" and all(isinstance(x, (str, bytes, list, tuple)) for x in (left, right)):
                _check_size(_weight(left) + _weight(right), "a sum of strings or lists (+)")
            elif operator == "%" and isinstance(left, str):
                _check_widths((left,), "a % format")
                if "*" in left:  # '%*s' % (999999999, 'x'): the width is an argument
                    _check_widths(right if isinstance(right, tuple) else (right,), "a % format")
                _check_weight((left, right), "a % format", _fields(left))
            return super().call_binop(context, operator, left, right)

        def wrap_str_format(self, value):
            # jinja sandboxes str.format at attribute access (this hook), not in call()
            owner, name = getattr(value, "__self__", None), getattr(value, "__name__", None)
            if isinstance(owner, str) and name in ("format", "format_map"):
                _check_widths((owner,), f"str.{name}()")
            wrapped = super().wrap_str_format(value)
            if wrapped is None:
                return None

            def checked(*args, **kwargs):  # each field may repeat any argument: '{0}{0}{0}'.format(a)
                if _NESTED_FIELD.search(owner):  # '{:>{w}}'.format(x, w=999999999): widths are arguments
                    _check_widths((*args, *kwargs.values()), f"str.{name}()")
                _check_weight((owner, *args, *kwargs.values()), f"str.{name}()", _fields(owner))
                return wrapped(*args, **kwargs)

            return checked

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja's own signature)
            name, owner = getattr(__obj, "__name__", None), getattr(__obj, "__self__", None)
            if isinstance(owner, str) and name in _WIDTH_METHODS:
                _check_widths((*args, *kwargs.values()), f"str.{name}()")
            if isinstance(owner, str) and name == "replace" and args:
                s, old, new = __obj.__self__, str(args[0]), str(args[1]) if len(args) > 1 else ""
                hits = s.count(old) if old else len(s) + 1
                _check_size(len(s) + hits * (len(new) - len(old)), "str.replace's result")
            if isinstance(owner, (str, bytes)) and name == "join" and args:
                items = list(_materialized(args[0], "str.join()"))
                _check_join(owner, items, "str.join()")
                args = (items, *args[1:])
            if __obj is generate_lorem_ipsum:
                n, mx = (list(args) + [None] * 4)[0], (list(args) + [None] * 4)[3]
                n, mx = kwargs.get("n", 5 if n is None else n), kwargs.get("max", 100 if mx is None else mx)
                if isinstance(n, int) and isinstance(mx, int) and n * mx * _LIPSUM_WORD > _MAX_CHARS:
                    raise _Stopped(f"lipsum({n}, max={mx}) would write more than {_MAX_CHARS} characters")
            return super().call(__context, __obj, *args, **kwargs)

    def raise_exception(message: str):
        raise _Raised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # jinja's own tojson escapes <, >, & for HTML; chat templates want the JSON as written.
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = Limited(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.filters.update({name: _check_filter(f) for name, f in env.filters.items()})
    # what {{ ... }} prints is turned into text after this: a list holding a big string 200 times
    env.finalize = lambda value: (_check_weight((value,), "an output {{ ... }}"), value)[1]
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

    budget = _MAX_STEPS + _STEPS_PER_MESSAGE * len(variables.get("messages") or ())
    out, n = [], 0
    try:
        compiled = compile_template(template)
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
    except ChatTemplateError as e:  # compile_template's, which cannot know the source
        raise ChatTemplateError(f"{source}: {e}") from None
    except MemoryError:
        raise  # not the template's message: an allocation the limits above missed
    except Exception as e:  # noqa: BLE001
        # the template's own code failing (1 / 0, 'a' + 1, str() of a 100000-digit integer...)
        raise ChatTemplateError(f"{source}: the chat template failed: {type(e).__name__}: {e}") from None
    return "".join(out)
