"""config.json of every HF model type archlab reads, and archlab's own config JSON, damaged.

The undamaged inputs are small random HF models, one per model type, written by HF transformers'
own save_pretrained (the first draw of scripts/sweep_hf.py's space that HF builds and archlab
loads). A damaged value is `bad` when its JSON type cannot be what HF wrote there (a string for a
bool, a float for an int, a list for a number), or it is NaN or infinite: archlab must refuse it,
or ignore it with no effect on the logits."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from pathlib import Path

from fuzzlib.harness import Case
from fuzzlib.values import bad_for, hostile_value, put, value_kind, where_keys

NAME = "config"
IDS = [[1, 2, 3, 4, 5]]


def make_seeds(folder: Path) -> None:
    import archlab
    from sweep_check import build_hf
    from sweep_space import SAMPLERS, draw

    for model_type in SAMPLERS:
        for index in range(40):
            cls, kw = draw(model_type, 0, index)
            try:
                ref = build_hf(cls, kw, seed=index)
                ref.save_pretrained(folder / "hf" / model_type)
                archlab.load(folder / "hf" / model_type)
                break
            except Exception:  # noqa: BLE001 - HF refuses or archlab refuses this draw: take the next
                shutil.rmtree(folder / "hf" / model_type, ignore_errors=True)
        else:
            raise RuntimeError(f"no draw of {model_type} both HF and archlab build")
    own = folder / "own"
    own.mkdir()
    for preset in ("llama-3-8b", "deepseek-v3", "gemma-3-27b", "gpt2", "qwen3-next-80b-a3b"):
        (own / f"{preset}.json").write_text(json.dumps(archlab.tiny(preset).to_dict(), indent=1))


def _logits(model):
    import torch

    with torch.no_grad():
        return model(torch.tensor(IDS))[0]


def _load_hf(folder: Path):
    import archlab

    return _logits(archlab.load(folder / "in" / "model"))


def _build_own(folder: Path):
    import archlab
    import torch

    cfg = archlab.ModelConfig.from_json_file(folder / "in" / "config.json")
    torch.manual_seed(0)
    return _logits(archlab.build(cfg))


def references(seeds: Path) -> dict:
    refs = {}
    for d in sorted((seeds / "hf").iterdir()):
        refs[f"hf:{d.name}"] = lambda folder, d=d: _load_hf(_copy_model(d, folder))
    for f in sorted((seeds / "own").iterdir()):
        def run(folder, f=f):
            shutil.copy(f, folder / "in" / "config.json")
            return _build_own(folder)
        refs[f"own:{f.stem}"] = run
    return refs


def _copy_model(seed: Path, folder: Path) -> Path:
    """The seed model in folder/in/model: weights hard-linked (never written), config.json copied."""
    dest = folder / "in" / "model"
    dest.mkdir(parents=True, exist_ok=True)
    for f in seed.iterdir():
        target = dest / f.name
        if target.exists() or target.is_symlink():
            continue
        if f.name.endswith(".json"):
            shutil.copy(f, target)
        else:
            try:
                os.link(f, target)
            except OSError:
                shutil.copy(f, target)
    return folder


# ---- whole-file damage: what a config.json can be instead of a JSON object ------------------------

def _deep(n: int) -> str:
    return '{"a":' * n + "1" + "}" * n


WHOLE = {  # name: (writer of the damaged file, bad)
    "not-utf8": (lambda p: p.write_bytes(b'{"model_type": "llama", "x": "\xff\xfe"}'), True),
    "root-list": (lambda p: p.write_text("[1, 2]"), True),
    "root-null": (lambda p: p.write_text("null"), True),
    "root-string": (lambda p: p.write_text('"llama"'), True),
    "empty": (lambda p: p.write_text(""), True),
    "truncated": (lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2]), True),
    "deep-nesting": (lambda p: p.write_text(_deep(100_000)), True),
    "huge-integer": (lambda p: p.write_text(p.read_text().replace("{", '{"zz": ' + "9" * 5000 + ",", 1)), True),
    "padded-40MiB": (lambda p: p.write_text(p.read_text() + " " * (40 << 20)), False),
    "dev-zero": (lambda p: (p.unlink(), p.symlink_to("/dev/zero")), True),
    "fifo": (lambda p: (p.unlink(), os.mkfifo(p)), True),
    "directory": (lambda p: (p.unlink(), p.mkdir()), True),
    "missing": (lambda p: p.unlink(), True),
    "symlink-outside": (lambda p: (shutil.copy(p, p.parent.parent.parent / "outside" / "config.json"), p.unlink(),
                                   p.symlink_to(p.parent.parent.parent / "outside" / "config.json")), False),
}


def case(seeds: Path, rng: random.Random, index: int) -> Case:
    if rng.random() < 0.2:
        return _own_case(seeds, rng)
    types = sorted(d.name for d in (seeds / "hf").iterdir())
    model_type = rng.choice(types)
    seed = seeds / "hf" / model_type
    original = json.loads((seed / "config.json").read_text())
    roll = rng.random()
    if roll < 0.15:
        name = rng.choice(sorted(WHOLE))
        write, bad = WHOLE[name]

        def prepare(folder, write=write):
            _copy_model(seed, folder)
            write(folder / "in" / "model" / "config.json")

        return Case(NAME, f"hf-file-{name}", f"{model_type}: config.json {name}", _load_hf, prepare, bad=bad,
                    names=("config.json",), escape=name == "symlink-outside")
    config = json.loads(json.dumps(original))
    if roll < 0.25:  # a key removed: HF's default applies, so this is valid input
        key = rng.choice(sorted(config))
        del config[key]
        kind, detail, bad, names = "hf-key-removed", f"{model_type}: {key} removed", False, (key,)
    else:
        path = rng.choice(where_keys(config))
        old = _get(config, path)
        new = hostile_value(rng, old)
        put(config, path, new)
        kind = f"hf-{value_kind(old, new)}"
        detail = f"{model_type}: {'.'.join(map(str, path))}: {_short(old)} -> {_short(new)}"
        bad, names = bad_for(old, new), tuple(str(p) for p in path if isinstance(p, str))

    text = json.dumps(config, allow_nan=True)

    def prepare(folder):
        _copy_model(seed, folder)
        (folder / "in" / "model" / "config.json").write_text(text)

    return Case(NAME, kind, detail, _load_hf, prepare, bad=bad, names=names + ("config.json",),
                reference=f"hf:{model_type}")


def _own_case(seeds: Path, rng: random.Random) -> Case:
    f = rng.choice(sorted((seeds / "own").iterdir()))
    config = json.loads(f.read_text())
    path = rng.choice(where_keys(config))
    old = _get(config, path)
    new = hostile_value(rng, old)
    put(config, path, new)
    text = json.dumps(config, allow_nan=True)

    def prepare(folder):
        (folder / "in" / "config.json").write_text(text)

    return Case(NAME, f"own-{value_kind(old, new)}",
                f"{f.stem}.json: {'.'.join(map(str, path))}: {_short(old)} -> {_short(new)}", _build_own, prepare,
                # embed_scale holds a formula string or a number: a number there is no type error
                bad=bad_for(old, new) and not (isinstance(old, str) and isinstance(new, (int, float))), names=tuple(str(p) for p in path if isinstance(p, str)) + (f"config.json",),
                reference=f"own:{f.stem}")


def _get(d, path):
    for p in path:
        d = d[p]
    return d


def _short(v) -> str:
    s = json.dumps(v, allow_nan=True) if not (isinstance(v, float) and math.isnan(v)) else "NaN"
    return s if len(s) <= 60 else s[:57] + "..."
