"""HF-format model folders (config.json + *.safetensors, sharded with model.safetensors.index.json
or not) damaged as a broken download, a hostile upload or a confused user leaves them, loaded
with archlab.load and run; and archlab's own writes (archlab.save, `archlab report -o`) aimed at
paths that are not what they seem (st_outputs.py).

The undamaged inputs are small random HF models of three model types, written by HF
transformers' own save_pretrained, each once whole and once in 3+ shards (max_shard_size).
The oracle is the undamaged folder's logits, the safetensors format's rules (st_format.py)
and, for the file system, what was on disk before."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

from fuzzlib.harness import Case

from . import st_format, st_outputs

NAME = "safetensors"
IDS = [[1, 2, 3, 4, 5]]
TYPES = ("llama", "qwen3_moe", "gpt2")
INDEX = "model.safetensors.index.json"


def make_seeds(folder: Path) -> None:
    import archlab
    from sweep_check import build_hf
    from sweep_space import draw

    for model_type in TYPES:
        for index in range(40):
            cls, kw = draw(model_type, 0, index)
            whole, sharded = folder / "hf" / model_type, folder / "hf" / f"{model_type}-sharded"
            try:
                ref = build_hf(cls, kw, seed=index)
                ref.save_pretrained(whole)
                size = sum(f.stat().st_size for f in whole.glob("*.safetensors"))
                ref.save_pretrained(sharded, max_shard_size=max(1, size // 5))
                shards = list(sharded.glob("*.safetensors"))
                if len(shards) < 3 or not (sharded / INDEX).is_file():
                    raise RuntimeError(f"only {len(shards)} shards")
                archlab.load(whole)
                archlab.load(sharded)
                break
            except Exception:  # noqa: BLE001 - HF refuses or archlab refuses this draw: take the next
                shutil.rmtree(whole, ignore_errors=True)
                shutil.rmtree(sharded, ignore_errors=True)
        else:
            raise RuntimeError(f"no draw of {model_type} both HF and archlab build in 3+ shards")


def logits(model):
    import torch

    with torch.no_grad():
        return model(torch.tensor(IDS))[0]


def _load(folder: Path):
    import archlab

    return logits(archlab.load(folder / "in" / "model"))


def copy_model(seed: Path, folder: Path) -> Path:
    """The seed in folder/in/model: each file copied (the damage rewrites files, never the seed's)."""
    dest = folder / "in" / "model"
    dest.mkdir(parents=True, exist_ok=True)
    for f in seed.iterdir():
        shutil.copy(f, dest / f.name)
    return dest


def references(seeds: Path) -> dict:
    refs = {f"hf:{d.name}": (lambda folder, d=d: _load(copy_model(d, folder).parent.parent))
            for d in sorted((seeds / "hf").iterdir())}
    refs.update(st_outputs.references(seeds))
    return refs


def _shards(model: Path) -> list[str]:
    return sorted(f.name for f in model.glob("*.safetensors"))


# ---- a shard (or model.safetensors) that is not a regular file inside the folder ------------------

def _place(kind: str, f: Path, outside: Path) -> None:
    if kind == "symlink-outside":
        shutil.copy(f, outside / f.name)
        f.unlink()
        f.symlink_to(outside / f.name)
    elif kind == "hardlink-inside":  # a hard link is the file itself: valid
        os.link(f, f.with_name("hard.bin"))
        f.unlink()
        os.link(f.with_name("hard.bin"), f)
    elif kind == "symlink-inside":  # a link to a copy beside it, inside the folder: valid
        shutil.move(f, f.with_name(f.name + ".real"))
        f.symlink_to(f.name + ".real")
    else:
        f.unlink()
        {"fifo": lambda: os.mkfifo(f), "dev-zero": lambda: f.symlink_to("/dev/zero"), "directory": f.mkdir,
         "missing": lambda: None, "dangling": lambda: f.symlink_to(f.name + ".gone"),
         "loop": lambda: f.symlink_to(f.name)}[kind]()


PLACES = {"symlink-outside": True, "hardlink-inside": False, "symlink-inside": False, "fifo": True, "dev-zero": True,
          "directory": True, "missing": True, "dangling": True, "loop": True}


# ---- the index: names that lead outside, wrong types, a map that disagrees with the shards --------

INDEX_KINDS = {  # kind: (bad, escape)
    "dotdot": (True, True), "absolute": (True, True), "nul": (True, False), "empty-name": (True, False),
    "int-name": (True, False), "backslash": (True, False), "not-json": (True, False), "root-list": (True, False),
    "no-map": (True, False), "map-list": (True, False), "map-string": (True, False), "map-empty": (True, False),
    "ghost-tensor": (True, False), "wrong-shard": (True, False), "shard-unlisted": (True, False),
    "subdir": (False, False), "extra-shard-file": (False, False), "metadata": (False, False), "extra-key": (False, False),
}


def _index_case(model: Path, kind: str, key: str, rng: random.Random, outside: Path) -> None:
    """Damage model/INDEX as `kind` says (INDEX_KINDS), at the tensor `key`."""
    index = json.loads((model / INDEX).read_text())
    wm = index["weight_map"]
    shard = wm[key]
    if kind in ("dotdot", "absolute"):  # the only copy of that shard's data lies outside the folder
        shutil.move(model / shard, outside / shard)
        new = f"../../outside/{shard}" if kind == "dotdot" else str(outside / shard)
        wm.update({k: new for k, v in wm.items() if v == shard})
    elif kind in ("nul", "empty-name", "int-name", "backslash"):
        wm[key] = {"nul": shard + "\x00.txt", "empty-name": "", "int-name": 3, "backslash": "..\\" + shard}[kind]
    elif kind == "not-json":
        (model / INDEX).write_text(json.dumps(index)[:-3])
        return
    elif kind == "root-list":
        index = [index]
    elif kind == "no-map":
        del index["weight_map"]
    elif kind in ("map-list", "map-string", "map-empty"):
        index["weight_map"] = {"map-list": list(wm.items()), "map-string": shard, "map-empty": {}}[kind]
    elif kind == "ghost-tensor":
        wm["model.ghost.weight"] = shard
    elif kind == "wrong-shard":
        wm[key] = next(s for s in sorted(set(wm.values())) if s != shard)
    elif kind == "shard-unlisted":  # its tensors left out of the map: the map describes a model missing them
        index["weight_map"] = {k: v for k, v in wm.items() if v != shard}
    elif kind == "subdir":  # a shard one folder down, named so: inside the folder, valid
        (model / "sub").mkdir()
        shutil.move(model / shard, model / "sub" / shard)
        wm.update({k: f"sub/{shard}" for k, v in wm.items() if v == shard})
    elif kind == "extra-shard-file":  # a shard file nobody lists: HF reads only what the index names
        shutil.copy(model / shard, model / "model-00009-of-00009.safetensors")
    elif kind == "metadata":
        index["metadata"] = rng.choice([None, [], "x", {"total_size": "huge"}, {"total_size": -1}, {"total_size": 2**70}])
    elif kind == "extra-key":
        index["zz"] = {"a": [1, None]}
    (model / INDEX).write_text(json.dumps(index))


def case(seeds: Path, rng: random.Random, index: int) -> Case:
    if rng.random() < 0.22:
        return st_outputs.case(seeds, rng, NAME)
    seed_name = rng.choice(sorted(d.name for d in (seeds / "hf").iterdir()))
    seed = seeds / "hf" / seed_name
    shard = rng.choice(_shards(seed))
    roll, sub = rng.random(), rng.random()  # sub: the seed of the damage's own draws, made in prepare
    ref = f"hf:{seed_name}"
    if (seed / INDEX).is_file() and roll < 0.3:
        kind = rng.choice(sorted(INDEX_KINDS))
        bad, escape = INDEX_KINDS[kind]
        wm = json.loads((seed / INDEX).read_text())["weight_map"]
        key = rng.choice(sorted(wm))
        # the tensors the damage touches: a refusal names the index, the shard or one of them
        names = (INDEX, wm[key], key, *(k for k, v in wm.items() if v == wm[key]))

        def prepare(folder, kind=kind):
            _index_case(copy_model(seed, folder), kind, key, random.Random(sub), folder / "outside")

        return Case(NAME, f"index-{kind}", f"{seed_name}: index {kind} at {key!r} ({wm[key]})", _load, prepare,
                    bad=bad, names=names, reference=ref, escape=escape)
    if roll < 0.45:
        kind = rng.choice(sorted(PLACES))

        def prepare(folder, kind=kind):
            _place(kind, copy_model(seed, folder) / shard, folder / "outside")

        return Case(NAME, f"place-{kind}", f"{seed_name}: {shard} {kind}", _load, prepare, bad=PLACES[kind],
                    names=(shard, "*.safetensors"), reference=ref, escape=kind == "symlink-outside")
    if roll < 0.75:
        kind = rng.choice(sorted(st_format.RAW))

        def prepare(folder, kind=kind):
            st_format.RAW[kind](copy_model(seed, folder) / shard, random.Random(sub))

        return Case(NAME, f"raw-{kind}", f"{seed_name}: {shard} {kind}", _load, prepare, bad=True,
                    names=(shard,), reference=ref)
    kind = rng.choice(sorted(st_format.TENSOR_KINDS))
    bad, same = st_format.TENSOR_KINDS[kind]
    source = seed / rng.choice([s for s in _shards(seed) if s != shard] or [shard])
    name = rng.choice(st_format.tensor_names(source if kind == "duplicate" else seed / shard))

    def prepare(folder, kind=kind):
        if kind == "duplicate":  # a tensor of another shard (or a new file) held twice
            st_format.duplicate(copy_model(seed, folder) / shard, name, source)
        else:
            st_format.tensor_change(copy_model(seed, folder) / shard, kind, name, random.Random(sub))

    # a refusal may name the tensor, or its experts together (experts.*: archlab stacks them)
    together = re.sub(r"\.experts\.\d+\.", ".experts.*.", name)
    return Case(NAME, f"tensor-{kind}", f"{seed_name}: {shard}: {name} {kind}", _load, prepare, bad=bad,
                names=(shard, name, together), reference=ref if (bad or same) else None)
