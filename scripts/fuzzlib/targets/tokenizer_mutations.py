"""The tokenizer target's damage: whole files, tokenizer_config.json / generation_config.json
fields, tokenizer.json's model and added tokens, and hostile chat templates.

draw(rng, seed, name) -> (kind, detail, edit(dest, folder), flags); edit runs in the parent on
the copied seed folder `dest` (folder is the case's folder, with outside/secret.txt holding
SECRET); flags: bad, names, escape, reference (False: the undamaged outputs are no oracle)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from fuzzlib.values import bad_for, hostile_value, put, where_keys

SECRET = "ARCHLAB-FUZZ-SECRET-7f3a9c"
JSON_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")
BIG_INT = 2**40  # values.bad_for's bound for a count, size or id


def _deep(n: int) -> str:
    return '{"a":' * n + "1" + "}" * n


def _outside_link(p: Path, folder: Path) -> None:
    target = folder / "outside" / p.name
    target.write_bytes(p.read_bytes() if p.is_file() else b"{}")
    p.unlink(missing_ok=True)
    p.symlink_to(target)


def _replace(p: Path, how) -> None:
    if p.is_file() or p.is_symlink():
        p.unlink()
    how(p)


WHOLE = {  # name: (edit(path, folder), bad)
    "not-utf8": (lambda p, f: p.write_bytes(b'{"x": "\xff\xfe", "chat_template": "\xc3("}'), True),
    "root-list": (lambda p, f: p.write_text("[1, 2]"), True),
    "root-null": (lambda p, f: p.write_text("null"), True),
    "root-string": (lambda p, f: p.write_text('"tokenizer"'), True),
    "empty": (lambda p, f: p.write_text(""), True),
    "truncated": (lambda p, f: p.write_text(p.read_text()[: len(p.read_text()) // 2]), True),
    "deep-nesting": (lambda p, f: p.write_text(_deep(100_000)), True),
    "huge-integer": (lambda p, f: p.write_text(p.read_text().replace("{", '{"zz": ' + "9" * 5000 + ",", 1)), True),
    "padded-17MiB": (lambda p, f: p.write_text(p.read_text() + " " * (17 << 20)), False),
    "sparse-300MB": (lambda p, f: (p.open("ab").truncate(300_000_000)), True),
    "dev-zero": (lambda p, f: _replace(p, lambda q: q.symlink_to("/dev/zero")), True),
    "fifo": (lambda p, f: _replace(p, os.mkfifo), True),
    "directory": (lambda p, f: _replace(p, Path.mkdir), True),
    "missing": (lambda p, f: p.unlink(missing_ok=True), False),
    "symlink-outside": (_outside_link, False),
    "link-to-secret": (lambda p, f: _replace(p, lambda q: q.symlink_to(f / "outside" / "secret.txt")), True),
}


def _whole(rng: random.Random, seed: Path, name: str):
    files = [*JSON_FILES, "chat_template.jinja"]
    file = rng.choice(files)
    how = rng.choice(sorted(WHOLE))
    edit, bad = WHOLE[how]
    if not (seed / file).exists() and how in ("truncated", "huge-integer", "padded-17MiB"):
        how, (edit, bad) = "root-list", WHOLE["root-list"]
    if file == "chat_template.jinja":  # text, not JSON ("[1, 2]" is a template): only unreadable text is bad
        bad = how in ("not-utf8", "sparse-300MB", "dev-zero", "fifo", "directory")
    if file == "tokenizer.json" and how == "missing":
        bad = True
    escape = how == "symlink-outside" and (seed / file).exists()
    # a missing or emptied side file changes what is there to render (no template, no specials):
    # only a crash, hang or escape counts then
    flags = {"bad": bad and not escape, "names": (file,) + (("chat template",) if file != "tokenizer.json" else ()),
             "escape": escape, "reference": how != "missing" and not (file == "chat_template.jinja" and how == "empty")}
    return f"file-{how}", f"{file} {how}", lambda dest, folder: edit(dest / file, folder), flags


# ---- tokenizer_config.json / special_tokens_map.json / generation_config.json fields ---------------

TOKEN_VALUES = [5, 0, -1, 2.5, True, None, [], ["<|eot_id|>"], {}, {"content": 5}, {"special": True},
                {"content": None}, {"content": ["<|im_end|>"]}, "", "<|not a token|>", {"content": "<|endoftext|>"}]
TEMPLATE_VALUES = [5, 2.5, True, None, [], ["garbage", 1], [{"name": "default", "template": 5}], [{"name": 5}],
                   [{"name": "tool_use", "template": "x"}], {"template": "x"}, "", [None], [[1, 2]]]


def _token_bad(v) -> bool:
    # HF writes a special token as a string or an AddedToken dict whose content is a string
    if isinstance(v, dict):
        return not isinstance(v.get("content"), str)
    return v is not None and not isinstance(v, str)


def _template_bad(v) -> bool:
    if isinstance(v, list):  # named templates: [{"name": str, "template": str}, ...]
        return not all(isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("template"), str) for t in v)
    return v is not None and not isinstance(v, str)


def _config_field(rng: random.Random, seed: Path, name: str):
    file = rng.choice(("tokenizer_config.json", "tokenizer_config.json", "special_tokens_map.json")
                      if (seed / "special_tokens_map.json").exists() else ("tokenizer_config.json",))
    config = json.loads((seed / file).read_text())
    key = rng.choice(sorted({*config, "bos_token", "eos_token", "unk_token", "pad_token", "archlab_vocab_size",
                             "chat_template"} if file == "tokenizer_config.json" else {*config, "unk_token"}))
    old = config.get(key)
    if rng.random() < 0.1:
        config.pop(key, None)
        new, bad, ref = "(removed)", False, False
    elif key.endswith("_token"):
        new = rng.choice(TOKEN_VALUES)
        bad, ref = _token_bad(new), True
    elif key == "chat_template":
        new = rng.choice(TEMPLATE_VALUES + [[{"name": "default", "template": old}]] * 2 if old else TEMPLATE_VALUES)
        bad, ref = _template_bad(new), True
    elif key == "archlab_vocab_size":  # ours: at least the tokens there are, and a sane count
        n = json.loads((seed.parent / f"{name}.expected.json").read_text())["len"]
        new = rng.choice([n, n + 1, 4096, n - 1, 10, 0, -1, 2**31, BIG_INT, 2**63, float(n), str(n), True, None, [n]])
        bad = new is not None and (isinstance(new, bool) or not isinstance(new, int) or not n <= new < BIG_INT)
        ref = new == n or new is None or bad
    else:
        new = hostile_value(rng, old)
        bad, ref = bad_for(old, new), True
    if new != "(removed)":
        config[key] = new
    text = json.dumps(config)
    flags = {"bad": bad, "names": (key, file), "reference": ref}
    return f"field-{key}", f"{file}: {key}: {_short(old)} -> {_short(new)}", lambda d, f: (d / file).write_text(text), flags


def _int_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < BIG_INT


def _generation(rng: random.Random, seed: Path, name: str):
    config = json.loads((seed / "generation_config.json").read_text())
    key = "eos_token_id" if rng.random() < 0.8 else rng.choice(sorted(config))
    old = config.get(key)
    new = rng.choice(["5", "<|eot_id|>", 2.5, 3.0, -1, 2**63, BIG_INT, 10**9, [[1]], [1, "x"], [1, 2.0], {"a": 1},
                      None, True, [], [True], [-5], hostile_value(rng, old)])
    if key == "eos_token_id":
        bad = not (new is None or _int_id(new) or isinstance(new, list) and all(_int_id(i) for i in new))
    else:
        bad = bad_for(old, new)
    config[key] = new
    text = json.dumps(config, allow_nan=True)
    # an id beyond the vocabulary or none at all is valid JSON for HF; it changes the stop ids only
    ref = bad or key != "eos_token_id"
    flags = {"bad": bad, "names": (key, "generation_config.json"), "reference": ref}
    return f"generation-{key}", f"{key}: {_short(old)} -> {_short(new)}", \
        lambda d, f: (d / "generation_config.json").write_text(text), flags


def _short(v) -> str:
    s = json.dumps(v, allow_nan=True, default=str)
    return s if len(s) <= 60 else s[:57] + "..."


def draw(rng: random.Random, seed: Path, name: str):
    from . import tokenizer_json, tokenizer_templates

    roll = rng.random()
    if roll < 0.15:
        return _whole(rng, seed, name)
    if roll < 0.35:
        return _config_field(rng, seed, name)
    if roll < 0.45:
        return _generation(rng, seed, name)
    if roll < 0.70:
        return tokenizer_json.draw(rng, seed, name)
    return tokenizer_templates.draw(rng, seed, name)
