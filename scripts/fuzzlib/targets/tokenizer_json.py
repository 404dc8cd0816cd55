"""The tokenizer target's tokenizer.json damage: values of wrong types, removed keys, the model's
vocab and merges, added_tokens (wrong types, ids beyond the vocabulary, duplicates), huge ids.

`bad` only where the file is certainly not what a tokenizer.json writer produces: a JSON type the
`tokenizers` library never writes there, a negative or absurd id, two tokens with one id. Anything
else (a merge removed, an added token's flag flipped) is a different but valid tokenizer: only a
crash, hang, huge allocation or escape counts then."""

from __future__ import annotations

import json
import random
from pathlib import Path

from fuzzlib.values import bad_for, hostile_value, put, where_keys

BIG_INT = 2**40
HUGE_IDS = [10**9, 2**31, 2**32 - 1, 2**40, 2**63, 2**64, -1, -(2**63)]


def _vocab(rng, data):
    vocab = data["model"]["vocab"]
    tok = rng.choice(sorted(vocab))
    how = rng.choice(("huge-id", "string-id", "float-id", "duplicate-id", "remove", "null-id", "rename-empty"))
    if how == "huge-id":
        vocab[tok] = rng.choice(HUGE_IDS)
        return how, f"vocab[{tok!r}] -> {vocab[tok]}", True
    if how == "string-id":
        vocab[tok] = str(vocab[tok])
        return how, f"vocab[{tok!r}] -> {vocab[tok]!r}", True
    if how == "float-id":
        vocab[tok] = vocab[tok] + 0.5
        return how, f"vocab[{tok!r}] -> {vocab[tok]}", True
    if how == "null-id":
        vocab[tok] = None
        return how, f"vocab[{tok!r}] -> null", True
    if how == "duplicate-id":
        other = rng.choice(sorted(vocab))
        vocab[tok] = vocab[other]
        return how, f"vocab[{tok!r}] -> {vocab[other]} (the id of {other!r})", tok != other
    if how == "rename-empty":
        vocab[""] = vocab.pop(tok)
        return how, f"vocab[{tok!r}] renamed ''", False
    del vocab[tok]
    return how, f"vocab[{tok!r}] removed", False


def _merges(rng, data):
    merges = data["model"]["merges"]
    i = rng.randrange(len(merges))
    how = rng.choice(("unknown-token", "three-parts", "number", "empty", "nested", "drop-all", "reverse", "duplicate"))
    old = merges[i]
    if how == "unknown-token":
        merges[i] = ["ZZZ-not-a-token", "Q"] if isinstance(old, list) else "ZZZ-not-a-token Q"
        bad = True
    elif how == "three-parts":
        merges[i] = ["a", "b", "c"] if isinstance(old, list) else "a b c"
        bad = True
    elif how == "number":
        merges[i] = 5
        bad = True
    elif how == "empty":
        merges[i] = [] if isinstance(old, list) else ""
        bad = True
    elif how == "nested":
        merges[i] = [old]
        bad = True
    elif how == "drop-all":
        data["model"]["merges"] = []
        bad = False
    elif how == "reverse":
        merges.reverse()
        bad = False
    else:
        merges.insert(i, old)
        bad = False
    return f"merges-{how}", f"merges[{i}] {old!r} {how}", bad


def _added(rng, data):
    added = data["added_tokens"]
    i = rng.randrange(len(added))
    entry = added[i]
    how = rng.choice(("id-huge", "id-beyond", "id-string", "content-type", "special-type", "duplicate", "same-id",
                      "remove-content", "remove-id", "new-huge"))
    size = len(data["model"]["vocab"])
    if how == "id-huge":
        entry["id"] = rng.choice(HUGE_IDS)
        bad = True
    elif how == "id-beyond":  # the next free id, or a gap after it: both valid for tokenizers
        entry["id"] = size + rng.choice((0, 1, 1000))
        bad = False
    elif how == "id-string":
        entry["id"] = str(entry["id"])
        bad = True
    elif how == "content-type":
        entry["content"] = rng.choice((5, None, ["x"], {"a": 1}))
        bad = True
    elif how == "special-type":
        entry["special"] = rng.choice(("yes", 1, None, [True]))
        bad = True
    elif how == "duplicate":
        added.append(dict(entry))
        bad = False
    elif how == "same-id":
        other = rng.choice(added)
        entry["id"] = other["id"]
        bad = other is not entry
    elif how == "remove-content":
        del entry["content"]
        bad = True
    elif how == "remove-id":
        del entry["id"]
        bad = True
    else:
        added.append({**entry, "id": rng.choice(HUGE_IDS[:5]), "content": "<|huge|>"})
        bad = True
    return f"added-{how}", f"added_tokens[{i}] ({entry.get('content')!r}) {how}", bad


def _anywhere(rng, data):
    paths = where_keys(data) + [("model", k) for k in data["model"]]
    path = rng.choice(paths)
    d = data
    for p in path:
        d = d[p]
    if rng.random() < 0.15 and len(path) >= 1:
        parent = data
        for p in path[:-1]:
            parent = parent[p]
        if isinstance(parent, dict):
            del parent[path[-1]]
            return "json-remove", f"{'.'.join(map(str, path))} removed", path[-1] in ("model", "vocab", "type", "merges")
    new = hostile_value(rng, d)
    put(data, path, new)
    bad = bad_for(d, new) and not (d is None or isinstance(d, (dict, list)) and new is None)
    return f"json-{type(d).__name__}-to-{type(new).__name__}", f"{'.'.join(map(str, path))}: {str(d)[:40]} -> {str(new)[:40]}", bad


def draw(rng: random.Random, seed: Path, name: str):
    data = json.loads((seed / "tokenizer.json").read_text())
    kind, detail, bad = rng.choice((_vocab, _merges, _added, _anywhere, _anywhere))(rng, data)
    text = json.dumps(data, allow_nan=True)
    flags = {"bad": bad, "names": ("tokenizer.json",), "reference": True}
    return f"tj-{kind}", f"tokenizer.json {detail}", lambda d, f: (d / "tokenizer.json").write_text(text), flags
