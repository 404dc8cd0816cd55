"""archlab's writes aimed at paths that are not what they seem: archlab.save(model, PATH) and
`archlab report -o PATH` where PATH is a symlink, a FIFO, a /dev/null link, a non-empty folder,
a regular file, a path under a file, with stale `.NAME.tmp-*` folders of a killed save beside
it, and max_shard_bytes of every wrong type.

The oracle is the disk: everything under folder/in is listed before (type, link target, file
hash) and compared after. Nothing may be lost or replaced unless the user asked (overwrite=True
for a folder; `-o FILE` names a regular file to replace), nothing that is not a regular file
(a link, FIFO, device) may be replaced, nothing may be left behind (a temporary), and a
finished write must read back. The run returns {"lost", "left", "wrote"}; every case is `bad`
with the reference {"lost": [], "left": [], "wrote": True}, so any damage counts as a silent
acceptance, and a refusal leaving the disk as it was is a clean error."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import shutil
import stat
import sys
import time
from contextlib import redirect_stderr
from pathlib import Path

from fuzzlib.harness import Case

CLEAN = "out:clean"
_DEFAULT = object()
# max_shard_bytes: (value, valid). 0 bytes per shard means nothing; None is the documented default.
SHARD_SIZES = [(None, True), (1, True), (1000, True), (10**30, True), (0, False), (-1, False), (-(2**63), False),
               (math.nan, False), (math.inf, False), (1.5, False), ("100", False), (True, False), (False, False),
               (2**63, True)]


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16]


def snapshot(root: Path) -> dict[str, list]:
    """Every entry under root, links not followed: its kind and link target or content hash."""
    out: dict[str, list] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            mode = os.lstat(p).st_mode
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(mode):
                out[rel] = ["link", os.readlink(p)]
            elif stat.S_ISREG(mode):
                out[rel] = ["file", _digest(p)]
            elif stat.S_ISDIR(mode):
                out[rel] = ["dir"]
            else:
                out[rel] = ["special", stat.S_IFMT(mode)]
    return out


def _under(rel: str, prefixes: list[str]) -> bool:
    return any(rel == p or rel.startswith(p + "/") for p in prefixes)


def _compare(root: Path, free: list[str], new_ok: list[str]) -> dict:
    before = json.loads((root.parent / "before.json").read_text())
    after = snapshot(root)
    lost = [f"{k}: {v} -> {after.get(k)}" for k, v in before.items() if after.get(k) != v and not _under(k, free)]
    left = [k for k in after if k not in before and not _under(k, new_ok)]
    return {"lost": sorted(lost)[:5], "left": sorted(left)[:5]}


def _run_save(folder: Path, target: str, overwrite: bool, size, valid: bool, free: list[str], new_ok: list[str],
              check: bool):
    import archlab
    import torch

    from .safetensors import logits

    root = folder / "in"
    model = archlab.load(root / "model")
    try:
        kw = {} if size is _DEFAULT else {"max_shard_bytes": size}
        archlab.save(model, root / target, overwrite=overwrite, **kw)
    except Exception:
        result = _compare(root, free, [])
        if result["lost"] or result["left"]:
            return {**result, "wrote": "refused, and left the disk changed"}
        raise
    result = _compare(root, free, new_ok)
    wrote = True
    if not valid:
        wrote = f"accepted max_shard_bytes={size!r}"
    elif check:
        wrote = bool(torch.equal(logits(archlab.load(root / target)), logits(model)))
    return {**result, "wrote": wrote}


def _run_report(folder: Path, target: str, free: list[str], new_ok: list[str], check: bool):
    from archlab.cli import main

    root = folder / "in"
    err = io.StringIO()
    with redirect_stderr(err):
        rc = main(["report", "gpt2", "-o", str(root / target), "-q"])
    if rc != 0:
        result = _compare(root, free, [])
        if result["lost"] or result["left"]:
            return {**result, "wrote": "refused, and left the disk changed"}
        raise ValueError(f"archlab report exited {rc}: {err.getvalue().strip()[-1500:]}")
    result = _compare(root, free, new_ok)
    p = root / target
    wrote = not check or (stat.S_ISREG(os.lstat(p).st_mode) and b"<html" in p.read_bytes()[:4096].lower())
    return {**result, "wrote": wrote}


# ---- what PATH is before the write ----------------------------------------------------------------

def _setup(root: Path, kind: str, target: str) -> None:
    """Make root/target what `kind` says, with decoys under root/elsewhere."""
    t, else_ = root / target, root / "elsewhere"
    (else_ / "full").mkdir(parents=True)
    (else_ / "full" / "keep.txt").write_text("the user's file")
    (else_ / "empty").mkdir()
    (else_ / "file.html").write_text("<p>the user's page</p>")
    (root / "afile").write_text("a file, not a folder")
    if kind == "empty-dir":
        t.mkdir()
    elif kind == "nonempty-dir":
        t.mkdir()
        (t / "notes.txt").write_text("the user's notes")
        (t / "sub").mkdir()
        (t / "sub" / "x.bin").write_bytes(b"\0" * 10)
    elif kind == "regular-file":
        t.write_text("the user's file")
    elif kind == "link-full-dir":
        t.symlink_to(else_ / "full")
    elif kind == "link-empty-dir":
        t.symlink_to(else_ / "empty")
    elif kind == "link-file":
        t.symlink_to(else_ / "file.html")
    elif kind == "dangling-link":
        t.symlink_to(else_ / "gone")
    elif kind == "fifo":
        os.mkfifo(t)
    elif kind == "devnull-link":
        t.symlink_to("/dev/null")
    elif kind.startswith("stale-"):  # a killed save's temporary beside an absent target, or look-alikes
        stale = root / f".{target}.tmp-0123abcd"
        if kind == "stale-old":
            stale.mkdir()
            (stale / "model.safetensors").write_bytes(b"\0" * 100)
            os.utime(stale, (time.time() - 3600,) * 2)
        elif kind == "stale-fresh":  # made after this process started: perhaps another save, running now
            stale.mkdir()
            (stale / "config.json").write_text("{}")
        elif kind == "stale-link":  # a link named like one, to the user's folder: neither followed nor removed
            stale.symlink_to(else_ / "full")
            os.utime(stale, (time.time() - 3600,) * 2, follow_symlinks=False)
        else:
            (root / f".{target}.tmp-notes").mkdir()
            os.utime(root / f".{target}.tmp-notes", (time.time() - 3600,) * 2)


SAVE_KINDS = ["absent", "empty-dir", "nonempty-dir", "regular-file", "link-full-dir", "link-empty-dir", "dangling-link",
              "fifo", "devnull-link", "under-file", "model-itself", "stale-old", "stale-fresh", "stale-link", "stale-lookalike"]
REPORT_KINDS = ["absent", "regular-file", "link-file", "dangling-link", "fifo", "devnull-link", "nonempty-dir", "empty-dir",
                "under-file"]


def case(seeds: Path, rng: random.Random, name: str) -> Case:
    from .safetensors import copy_model

    seed = seeds / "hf" / "llama"
    report = rng.random() < 0.35
    kind = rng.choice(REPORT_KINDS if report else SAVE_KINDS)
    target = {"under-file": "afile/out", "model-itself": "model"}.get(kind, "out.html" if report else "out")
    overwrite = rng.random() < 0.5
    size, valid = (_DEFAULT, True) if rng.random() < 0.6 else rng.choice(SHARD_SIZES)
    free = []  # what the user asked to replace
    if kind in ("nonempty-dir", "regular-file", "model-itself") and (overwrite or report):
        free.append(target)
    if kind == "link-full-dir" and overwrite:
        free.append("elsewhere/full/keep.txt")
    if kind == "stale-old":
        free.append(f".{target}.tmp-0123abcd")
    new_ok = [target] + (["elsewhere/full", "elsewhere/empty"] if kind.startswith("link-") else [])
    check = kind in ("absent", "empty-dir", "nonempty-dir", "regular-file", "model-itself") or kind.startswith("stale-")

    def prepare(folder):
        copy_model(seed, folder)
        _setup(folder / "in", kind, target)
        (folder / "before.json").write_text(json.dumps(snapshot(folder / "in")))

    names = (Path(target).name, "afile") + (() if valid else ("max_shard_bytes",))
    if report:
        return Case(name, f"report-{kind}", f"archlab report -o {target} ({kind})",
                    lambda folder: _run_report(folder, target, free, new_ok, check), prepare, bad=True, names=names,
                    reference=CLEAN)
    label = "" if size is _DEFAULT else f", max_shard_bytes={size!r}"
    return Case(name, f"save-{kind}" + ("" if valid else "-badsize"), f"archlab.save(model, {target} ({kind}), "
                f"overwrite={overwrite}{label})",
                lambda folder: _run_save(folder, target, overwrite, size, valid, free, new_ok, check), prepare,
                bad=True, names=names, reference=CLEAN)


def references(seeds: Path) -> dict:
    from .safetensors import copy_model

    def run(folder):
        copy_model(seeds / "hf" / "llama", folder)
        (folder / "before.json").write_text(json.dumps(snapshot(folder / "in")))
        return _run_save(folder, "out", False, _DEFAULT, True, [], ["out"], True)

    return {CLEAN: run}
