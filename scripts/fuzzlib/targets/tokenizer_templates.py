"""The tokenizer target's hostile chat templates: loops, GB strings, recursion, raised errors,
undefined names, sandbox escapes, huge output, include/import of files.

Each is a valid template HF's renderer would run, so none is `bad`: rendering it (accepted) or
refusing it with an error naming the chat template (clean error) are both fine; a crash, hang,
huge allocation, or reading the secret beside the folder (escape: opened, or its text in the
output) are not. Those that can only succeed by reading the secret are `escape`."""

from __future__ import annotations

import json
import random
from pathlib import Path

SECRET_NAME = "outside/secret.txt"
GIANT = "{% set a = 'x' * 20000000 %}"  # the largest string the limits allow: the base of what multiplies it
GIANT_LIST = GIANT + "{% set l = [" + ", ".join(["a"] * 200) + "] %}"  # 4 GB of text as 200 pointers
POPEN = "popen('cat {secret}').read()"

HOSTILE = {  # name: template ({secret}: the secret's absolute path, {rel}: relative to the template's folder)
    "nested-range": "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
    "triple-range": "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}",
    "big-range": "{% for i in range(10**9) %}{% endfor %}",
    "str-times": "{{ 'x' * 10**10 }}",
    "str-times-neg": "{{ 'x' * -5 }}ok",
    "list-times": "{{ [1, 2] * 10**10 }}",
    "bytes-times": "{{ 'x'.encode() * 10**10 }}",
    "messages-times": "{{ messages * 10**8 }}",
    "format-filter": "{{ '%999999999s' | format('x') }}",
    "percent-format": "{{ '%999999999s' % 'x' }}",
    "percent-star": "{{ '%*s' % (999999999, 'x') }}",
    "format-method": "{{ '{:>999999999}'.format('x') }}",
    "format-repeat": GIANT + "{{ ('{0}' * 200).format(a) }}",
    "percent-repeat": GIANT + "{{ ('%s' * 200) % ((a,) * 200) }}",
    "center": "{{ 'x' | center(10**10) }}",
    "ljust": "{{ 'x'.ljust(10**10) }}",
    "zfill": "{{ '1'.zfill(10**10) }}",
    "indent": "{{ 'a\nb' | indent(10**10) }}",
    "concat-loop": "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "plus-loop": "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
    "join-filter": GIANT_LIST + "{{ l | join }}",
    "join-method": GIANT_LIST + "{{ a.join(l) }}",
    "join-map": GIANT_LIST + "{{ l | map('upper') | join }}",
    "map-list": GIANT_LIST + "{{ l | map('upper') | list | length }}",
    "list-plus": GIANT_LIST + "{{ (l + l) | length }}",
    "striptags-slow": "{{ ('<' * 10**6) | striptags }}",
    "urlize-slow": "{{ ('<' * 10**6) | urlize | length }}",
    "sort-big": "{{ ('x' * 10**7) | list | sort | length }}",
    "nested-format-width": "{{ '{:>{w}}'.format('x', w=10**9) }}",
    "join-separator": GIANT + "{{ ('x' * 1000) | list | join(a) }}",
    "list-output": GIANT_LIST + "{{ l }}",
    "list-concat": GIANT_LIST + "{{ l ~ '' }}",
    "list-string": GIANT_LIST + "{{ l | string | length }}",
    "list-tojson": GIANT_LIST + "{{ l | tojson | length }}",
    "replace-filter": "{{ ('x' * 10**7) | replace('x', 'x' * 100) }}",
    "replace-method": "{{ ('x' * 10**7).replace('x', 'x' * 100) }}",
    "lipsum": "{{ lipsum(10**7) | length }}",
    "wordwrap-slow": "{{ ('x' * 10**7) | wordwrap(1) | length }}",
    "power": "{{ 2 ** 10**10 }}",
    "int-square": "{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n }}",
    "int-to-text": "{{ 2 ** 100000 }}",
    "divide-zero": "{{ 1 / 0 }}",
    "type-error": "{{ 'a' + 1 }}",
    "value-error": "{{ 'abc'.index('z') }}",
    "range-step-0": "{{ range(1, 5, 0) | list }}",
    "recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "mutual-recursion": "{% macro f(n) %}{{ g(n) }}{% endmacro %}{% macro g(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "caller-recursion": "{% macro f() %}{{ caller() }}{% endmacro %}{% call f() %}{{ f() }}{% endcall %}",
    "raise": "{{ raise_exception('Conversation roles must alternate user/assistant') }}",
    "raise-object": "{{ raise_exception(messages) }}",
    "undefined-attr": "{{ nothing.at.all }}",
    "undefined-plain": "{{ nothing }}{{ messages[99] }}ok",
    "undefined-call": "{{ nothing() }}",
    "mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "attr-filter": "{{ (''|attr('__class__')).__mro__ }}",
    "cycler-globals": "{{ cycler.__init__.__globals__.os." + POPEN + " }}",
    "joiner-globals": "{{ joiner.__init__.__globals__.os." + POPEN + " }}",
    "lipsum-globals": "{{ lipsum.__globals__['os']." + POPEN + " }}",
    "namespace-globals": "{{ namespace.__init__.__globals__['os']." + POPEN + " }}",
    "raise-globals": "{{ raise_exception.__globals__['open']('{secret}').read() }}",
    "raise-code": "{{ raise_exception.__code__.co_consts }}{{ raise_exception.__closure__ }}",
    "strftime-globals": "{{ strftime_now.__globals__ }}",
    "template-reference": "{{ self._TemplateReference__context.cycler.__init__.__globals__.os." + POPEN + " }}",
    "self-context": "{{ self.__dict__ }}{{ self._TemplateReference__context.environment }}",
    "format-attr": "{{ '{0.__class__.__mro__}'.format(messages) }}",
    "format-globals": "{{ '{0.__globals__[os]}'.format(raise_exception) }}",
    "messages-mutate": "{{ messages.append(1) }}{{ messages[0].update({'role': 'x'}) }}",
    "func-attrs": "{{ raise_exception.__name__ }}{{ range.__self__ }}{{ lipsum.__module__ }}",
    "include-abs": "{% include '{secret}' %}",
    "include-rel": "{% include '../../{rel}' %}",
    "import-abs": "{% import '{secret}' as s %}{{ s }}",
    "from-import": "{% from '{secret}' import x %}{{ x }}",
    "extends": "{% extends '{secret}' %}",
    "huge-output": "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
    "output-loop-messages": "{% for i in range(99999) %}{% for m in messages %}{{ m.content * 100 }}{% endfor %}{% endfor %}",
    "namespace-ok": "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}",
    "syntax-error": "{% for m in messages %}{{ m.content }",
    "dict-items": "{% for k, v in messages[0].items() %}{{ k }}={{ v }};{% endfor %}",
}
ESCAPES = {"raise-globals", "include-abs", "include-rel", "import-abs", "from-import", "extends", "cycler-globals",
           "joiner-globals", "lipsum-globals", "namespace-globals", "template-reference"}


def draw(rng: random.Random, seed: Path, name: str):
    how = rng.choice(sorted(HOSTILE))
    template = HOSTILE[how]
    in_jinja = (seed / "chat_template.jinja").exists()

    def edit(dest: Path, folder: Path):
        text = template.replace("{secret}", str(folder / SECRET_NAME)).replace("{rel}", SECRET_NAME)
        if in_jinja:
            (dest / "chat_template.jinja").write_text(text)
        else:
            config = json.loads((dest / "tokenizer_config.json").read_text())
            config["chat_template"] = text
            (dest / "tokenizer_config.json").write_text(json.dumps(config))

    flags = {"bad": False, "names": ("chat template",), "escape": how in ESCAPES, "reference": False}
    return f"template-{how}", f"chat template {how}: {template[:80]}", edit, flags
