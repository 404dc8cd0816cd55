"""The files the cli target's commands name, and the hostile things that stand in for them.

Every file lies in the case's folder/in (the command runs there, with relative paths, so an
error can name them); a decoy a model folder links to lies in folder/outside."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

CORPUS = "corpus.txt"
CONFIG = "tinycfg.json"
MODEL = "seedmodel"


def make_seeds(folder: Path) -> None:
    import archlab
    import torch
    from archlab.tokenizer import byte_tokenizer

    torch.manual_seed(0)
    # a short context: running into it takes milliseconds, and a long prompt passes it
    model = archlab.build(archlab.tiny("llama-3-8b", vocab_size=256, max_seq_len=64))
    archlab.save(model, folder / MODEL)
    byte_tokenizer().save(folder / MODEL)
    (folder / CORPUS).write_text("".join(f"Line {i}: to be or not to be, that is the question.\n" for i in range(60)))
    (folder / CONFIG).write_text(json.dumps(archlab.tiny("gpt2").to_dict(), indent=1))


def place(seeds: Path, folder: Path, name: str) -> Path:
    """A seed file or folder in folder/in: files hard-linked where they are never written, else copied."""
    src, dest = seeds / name, folder / "in" / name
    if src.is_dir():
        dest.mkdir(exist_ok=True)
        for f in src.iterdir():
            _link_or_copy(f, dest / f.name, copy=f.suffix == ".json")
    else:
        _link_or_copy(src, dest, copy=True)
    return dest


def _link_or_copy(src: Path, dest: Path, copy: bool) -> None:
    if dest.exists() or dest.is_symlink():
        return
    if not copy:
        try:
            os.link(src, dest)
            return
        except OSError:
            pass
    shutil.copy(src, dest)


def _replace(p: Path, how) -> None:
    if p.is_dir():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()
    how(p)


def _truncate(p: Path) -> None:
    if not p.is_file():  # a FIFO or a link to /dev/zero is never read here
        return
    data = p.read_bytes()
    p.unlink()  # it may be a hard link to the seed: write a new file, never into the seed
    p.write_bytes(data[: max(1, len(data) // 2)])


def _outside_link(p: Path) -> None:
    out = p.parent
    while out.name != "in":
        out = out.parent
    decoy = out.parent / "outside" / p.name
    if p.exists() and not p.is_file():
        return
    decoy.write_bytes(p.read_bytes()) if p.exists() else decoy.write_text("{}")
    p.unlink()
    p.symlink_to(decoy)


# name: (what it does to the file at p, bad). Every one but "padded" makes the file unusable.
FILE_DAMAGE = {
    "missing": (lambda p: _replace(p, lambda q: None), True),
    "directory": (lambda p: _replace(p, lambda q: q.mkdir()), True),
    "fifo": (lambda p: _replace(p, os.mkfifo), True),
    "dev-zero": (lambda p: _replace(p, lambda q: q.symlink_to("/dev/zero")), True),
    "empty": (lambda p: _replace(p, lambda q: q.write_bytes(b"")), True),
    "not-utf8": (lambda p: _replace(p, lambda q: q.write_bytes(b'{"x": "\xff\xfe\xc3"}\n\xff')), True),
    "truncated": (lambda p: _truncate(p), True),
    "json-list": (lambda p: _replace(p, lambda q: q.write_text("[1, 2, 3]")), True),
    "json-nan": (lambda p: _replace(p, lambda q: q.write_text('{"vocab_size": NaN, "d_model": Infinity}')), True),
    "deep-nesting": (lambda p: _replace(p, lambda q: q.write_text('{"a":' * 100_000 + "1" + "}" * 100_000)), True),
    "huge-integer": (lambda p: _replace(p, lambda q: q.write_text('{"vocab_size": ' + "9" * 5000 + "}")), True),
}
# text is read as it is, so a corpus's damage is what makes it unreadable as text
CORPUS_DAMAGE = {k: FILE_DAMAGE[k] for k in ("missing", "directory", "fifo", "dev-zero", "not-utf8")}
CORPUS_DAMAGE["empty"] = (FILE_DAMAGE["empty"][0], True)
CORPUS_DAMAGE["binary"] = (lambda p: p.write_bytes(bytes(range(256)) * 40), False)  # latin-1 text is text too


def damage_model(rng, folder_name: str):
    """(what to do to folder/in/<model>, bad, escape, detail): a model folder broken as a download or
    an upload breaks it."""
    roll = rng.random()
    if roll < 0.3:
        name = rng.choice(["missing", "directory", "fifo", "dev-zero", "empty"])
        how, bad = FILE_DAMAGE[name]
        return (lambda d: how(d) if name != "directory" else _replace(d, lambda q: q.mkdir())), bad, False, f"model folder {name}"
    member = rng.choice(["config.json", "tokenizer.json", "model.safetensors", "tokenizer_config.json"])
    if rng.random() < 0.15 and member.endswith(".json"):
        return (lambda d: _outside_link(d / member)), False, True, f"{member} links outside the model folder"
    name = rng.choice(sorted(FILE_DAMAGE))
    how, bad = FILE_DAMAGE[name]
    if member == "tokenizer_config.json":  # optional, and keys it does not use may be anything
        bad = name not in ("missing", "json-nan", "huge-integer", "deep-nesting")
    return (lambda d: how(d / member)), bad, False, f"{member} {name}"
