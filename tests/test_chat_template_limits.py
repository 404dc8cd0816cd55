"""Hostile chat templates (issue 12): loops, huge strings and recursion are stopped with a
ChatTemplateError naming the template's source; ordinary templates render exactly as HF's
renderer (transformers.utils.chat_template_utils.render_jinja_template) renders them."""

from __future__ import annotations

import time

import pytest

from archlab.chat_template import ChatTemplateError, render

transformers = pytest.importorskip("transformers")

MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "a <b> & 'c' 12345678901234"},
        {"role": "assistant", "content": "ok"}]

# Every operator and filter the limits intercept, used the way real templates use them.
ORDINARY = (
    "{% set ns = namespace(s='') %}{% for m in messages %}{% set ns.s = ns.s ~ m.role[0] %}"
    "{{ '<|' + m.role + '|>' }}{{ '-' * 3 }}{{ m.content | trim | center(30) }}{{ '%5s|' % m.role }}"
    "{{ '{:>8}'.format(m.role) }}{{ m.content.replace('a', 'AA') }}{{ (loop.index ** 2) * 7 }}"
    "{{ m.content | wordwrap(12) | indent(2) }}{% if loop.last %}{{ ns.s }}{% endif %}\n{% endfor %}"
    "{% for i in range(3) %}{{ i }}{% endfor %}{{ messages | length }}{{ '%d' | format(1732960000) }}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _hf(template: str, msgs=MSGS) -> str:
    from transformers.utils.chat_template_utils import render_jinja_template

    return render_jinja_template([msgs], chat_template=template, add_generation_prompt=True)[0][0]


def test_ordinary_template_equals_hf():
    assert render(ORDINARY, "t.gguf", messages=MSGS, add_generation_prompt=True) == _hf(ORDINARY)


@pytest.mark.parametrize("template, message", [
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", r"ran more than \d+ template steps"),
    ("{% for i in range(1000000) %}{% endfor %}", r"Range too big"),
    ("{{ 'x' * 10000000000 }}", r"a repeated string or list \(\*\) would hold 10000000000 characters"),
    ("{{ [0] * 10000000000 }}", r"a repeated string or list \(\*\) would hold \d+ characters"),
    ("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
     r"a joined string \(~\) would build more than \d+ characters"),
    ("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
     r"a sum of strings or lists \(\+\) would hold \d+"),
    ("{{ 2 ** 10000000000 }}", r"2 \*\* 10000000000 would pass 1000000 bits"),
    ("{% set ns = namespace(n=3) %}{% for i in range(30) %}{% set ns.n = ns.n * ns.n %}{% endfor %}", r"integer product would pass"),
    ("{{ 'x' | center(10000000000) }}", r"filter center was given a width of 10000000000"),
    ("{{ 'x'.ljust(10000000000) }}", r"str\.ljust\(\) was given a width of 10000000000"),
    ("{{ '{:>9999999999}'.format('x') }}", r"str\.format\(\) was given a format width over the limit"),
    ("{{ '%9999999999s' % 'x' }}", r"a % format was given a format width over the limit"),
    ("{{ ('x' * 10000000).replace('x', 'yyyyyyyyyy') }}", r"str\.replace's result would hold 100000000"),
    ("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", r"its output passed 20000000 characters"),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", r"(recursed too deeply|ran more than \d+ template steps)"),
    ("{% if messages[0].role != 'user' %}{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}",
     r"the chat template raised an error: Conversation roles must alternate user/assistant$"),
    ("{{ messages.__class__.__mro__ }}", r"failed: SecurityError: access to attribute '__class__'"),
], ids=["nested-range", "big-range", "str-times", "list-times", "concat-doubling", "plus-doubling", "power", "center-filter",
        "int-squaring", "ljust", "format-width", "percent-width", "replace", "output", "recursion", "raise_exception", "sandbox"])
def test_hostile_template_is_stopped(template, message):
    start = time.perf_counter()
    with pytest.raises(ChatTemplateError, match=rf"^t\.gguf: .*{message}"):
        render(template, "t.gguf", messages=MSGS, add_generation_prompt=True)
    assert time.perf_counter() - start < 10


def test_raise_exception_message_equals_hf():
    """HF raises jinja2's TemplateError carrying the template's message; ours carries the same text."""
    import jinja2

    template = "{{ raise_exception('only user and assistant roles are supported!') }}"
    with pytest.raises(jinja2.TemplateError) as hf:
        _hf(template)
    with pytest.raises(ChatTemplateError) as ours:
        render(template, "t.gguf", messages=MSGS)
    assert str(ours.value).endswith(f"raised an error: {hf.value}")


# Found by the tokenizer fuzz target (scripts/fuzzlib/targets/tokenizer_templates.py): ways to
# build gigabytes that the size checks above did not see, a 4 GB string being 200 references to
# one 20M-character string (`l` below) until something turns the list into text.
_GIANT = "{% set a = 'x' * 20000000 %}{% set l = [" + ", ".join(["a"] * 200) + "] %}"


@pytest.mark.parametrize("template, message", [
    (_GIANT + "{{ ('{0}' * 200).format(a) }}", r"str\.format\(\) would build more than"),
    (_GIANT + "{{ ('%s' * 200) % ((a,) * 200) }}", r"would hold \d+ characters"),
    ("{{ '%*s' % (999999999, 'x') }}", r"a % format was given a width of 999999999"),
    ("{{ '{:>{w}}'.format('x', w=10**9) }}", r"str\.format\(\) was given a width of 1000000000"),
    (_GIANT + "{{ l | join }}", r"filter join would build more than"),
    (_GIANT + "{{ a.join(l) }}", r"str\.join\(\) would build more than"),
    (_GIANT + "{{ ('x' * 1000) | list | join(a) }}", r"filter join would hold \d+"),
    (_GIANT + "{{ l | map('upper') | list | length }}", r"filter map would build more than"),
    (_GIANT + "{{ l }}", r"an output \{\{ \.\.\. \}\} would build more than"),
    (_GIANT + "{{ l ~ '' }}", r"a joined string \(~\) would build more than"),
    (_GIANT + "{{ l | tojson | length }}", r"filter tojson would build more than"),
    (_GIANT + "{{ (l + l) | length }}", r"a sum of strings or lists \(\+\) would hold"),
    ("{{ 'x'.encode() * 10**10 }}", r"a repeated string or list \(\*\) would hold 10000000000"),
    ("{{ ('x' * 10**7) | replace('x', 'x' * 100) }}", r"filter replace would hold"),
    ("{{ lipsum(10**7) | length }}", r"lipsum\(10000000, max=100\) would write more than"),
    ("{{ ('x' * 10**7) | wordwrap(1) }}", r"filter wordwrap was given 10000000 characters; over 100000 it takes quadratic"),
    ("{{ ('<' * 10**6) | striptags }}", r"filter striptags was given 1000000 characters"),
    ("{{ ('x' * 10**7) | list | sort | length }}", r"filter sort would build more than"),
], ids=["format-fields", "percent-fields", "percent-star", "nested-format-width", "join-filter", "join-method",
        "join-separator", "map-list", "output", "concat", "tojson", "plus", "bytes", "replace-filter", "lipsum",
        "wordwrap", "striptags", "sort"])
def test_hidden_huge_strings_are_stopped(template, message):
    start = time.perf_counter()
    with pytest.raises(ChatTemplateError, match=rf"^t\.gguf: the chat template was stopped: .*{message}"):
        render(template, "t.gguf", messages=MSGS)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("template, error", [
    ("{{ 1 / 0 }}", "ZeroDivisionError"), ("{{ 'a' + 1 }}", "TypeError"), ("{{ 'abc'.index('z') }}", "ValueError"),
    ("{{ 2 ** 100000 }}", "ValueError"), ("{{ range(1, 5, 0) | list }}", "ValueError"),
    ("{% include '/etc/passwd' %}", "TypeError"), ("{% from '/etc/passwd' import x %}{{ x }}", "TypeError"),
])
def test_template_code_errors_name_the_template(template, error):
    """HF lets these escape as the template's raw Python exception; ours names the template."""
    with pytest.raises(ChatTemplateError, match=rf"^t\.gguf: the chat template failed: {error}: "):
        render(template, "t.gguf", messages=MSGS)


def test_syntax_error_names_the_source():
    with pytest.raises(ChatTemplateError, match=r"^t\.gguf: chat template: syntax error at line 1"):
        render("{% for m in messages %}{{ m }", "t.gguf", messages=MSGS)
