"""What loading a GGUF file with quant="keep" computes (the blocks repacked for the kernels, the float
tensors converted), kept once per file in $ARCHLAB_CACHE/loaded/ in `archlab quantize`'s format
(io/quantized.py: safetensors, read through a memory map), so that the next `archlab generate` skips
the work: SmolLM2-135M's weights load in ~0.06 s instead of ~0.45 s.

An entry is keyed by the file's size, its modification time and a hash of its first MiB (the header:
metadata and tensor table), the dtype, and the names, sizes and times of archlab's source files (a
fix to the loader must not be hidden behind weights converted by the old one); a changed file or a
changed archlab gets a new entry, and the oldest entries of a file beyond KEEP are removed. Entries
are written whole or not at all (io.atomic.atomic_directory), and a cache that cannot be written or
read is only a slower load, said once as a warning.
A GGUF file's tokenizer is kept likewise, as tokenizer.json under $ARCHLAB_CACHE/tokenizers/,
when its copy encodes a set of probes as the original does (load_tokenizer_kept).
ARCHLAB_LOAD_CACHE=0 turns both off."""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path

from .io.files import cache_dir

HEADER_BYTES = 1 << 20
KEEP = 3  # entries kept per file name: one per dtype (float32, bfloat16, float16)


@functools.cache
def code_hash() -> str:
    """A hash of every archlab source file's name, size and modification time (a stat each,
    ~7 ms in all), once per process."""
    h = hashlib.sha256()
    root = Path(__file__).parent
    for f in sorted(root.rglob("*.py")) + sorted(root.rglob("*.c")):
        st = f.stat()
        h.update(f"{f.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def enabled() -> bool:
    return os.environ.get("ARCHLAB_LOAD_CACHE", "1") not in ("0", "")


def entry(path: Path, dtype, kind: str = "loaded") -> Path:
    """The cache folder for GGUF file `path` loaded with quant="keep" in `dtype` (kind "loaded"),
    or for its tokenizer (kind "tokenizers", dtype None)."""
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(HEADER_BYTES))
    h.update(f"{st.st_size}:{st.st_mtime_ns}:{dtype}:{code_hash()}".encode())
    return cache_dir() / kind / f"{path.stem[:60]}-{h.hexdigest()[:24]}"


def _prune(newest: Path) -> None:
    """The entries of the same file name beyond the KEEP most recently written, removed."""
    import shutil

    stem = newest.name.rsplit("-", 1)[0]
    same = [p for p in newest.parent.glob(f"{stem}-*") if p.is_dir() and p.name.rsplit("-", 1)[0] == stem]
    for old in sorted(same, key=lambda p: p.stat().st_mtime, reverse=True)[KEEP:]:
        if old != newest:
            shutil.rmtree(old, ignore_errors=True)


def _through(folder: Path, marker: str, read: Callable, load: Callable, write: Callable, *, name: str, again: str,
             unwritten: str = ""):
    """read(folder) when the entry holds `marker`; else load(), written into a fresh entry by
    write(obj, tmp) for next time (write raises _NotSame to keep nothing). A cache that fails
    only costs a slower load, said in a warning: `name` the cache, `again` what is done instead
    of reading it, `unwritten` what a failed write means."""
    if (folder / marker).is_file():
        try:
            return read(folder)
        # damaged (safetensors raises its own SafetensorError, no subclass of OSError): load again, replace it
        except Exception as e:  # noqa: BLE001 -- any failure of a cache only costs a slower load, said
            warnings.warn(f"archlab: the {name} cache {folder} is unreadable ({type(e).__name__}: {e}); "
                          f"{again} again", RuntimeWarning)
    obj = load()
    try:
        from .io.atomic import atomic_directory

        with atomic_directory(folder, overwrite=True) as tmp:
            write(obj, tmp)
        _prune(folder)
    except _NotSame:  # atomic_directory removed the copy: it is read from the file each time
        pass
    except OSError as e:
        warnings.warn(f"archlab: could not write the {name} cache {folder} ({e}){unwritten}", RuntimeWarning)
    return obj


def load_kept(path: Path, dtype, load: Callable):
    """load() (a GGUF loaded with quant="keep" on the CPU), or its cached copy; a fresh load is
    written into the cache for next time."""
    from .io.quantized import load_quantized, save_quantized
    from .model import resolve_dtype

    if not enabled():
        return load()
    dtype = resolve_dtype(dtype)
    return _through(entry(path, dtype), "quantization.json", lambda f: load_quantized(f, dtype=dtype), load,
                    lambda model, tmp: save_quantized(model, tmp, "keep", overwrite=True),
                    name="load", again=f"loading {path}", unwritten="; the next load converts again")


# Probes of a tokenizer's round trip through tokenizer.json: plain, accented and CJK text, digits,
# whitespace runs, and the special tokens' own spellings.
_PROBES = ["Hello, world!", "  two  spaces\n\nand lines\t", "café naïve 東京 🙂", "3.14159 x 2**10"]


def _same_tokenizer(a, b) -> bool:
    specials = [t for t in (a.bos_token, a.eos_token, a.unk_token, a.pad_token) if t]
    texts = _PROBES + [" ".join(specials)]
    if a.chat_template:
        texts.append(a.apply_chat_template([{"role": "user", "content": _PROBES[2]}]))
    fields = ("chat_template", "stop_ids", "bos_token", "eos_token", "unk_token", "pad_token", "adds_bos")
    return (len(a) == len(b) and all(getattr(a, f) == getattr(b, f) for f in fields)
            and all(a.encode_prompt(t) == b.encode_prompt(t) and a.encode_prompt(t, templated=True)
                    == b.encode_prompt(t, templated=True) for t in texts)
            and all(a.decode(a.encode(t)) == b.decode(a.encode(t)) for t in texts))


def load_tokenizer_kept(path: Path, load: Callable):
    """load() (a GGUF file's tokenizer), or its copy saved as tokenizer.json, which loads in about
    half the time (SmolLM2: ~0.12 s instead of ~0.25 s). Kept only when the copy encodes the
    probes above as the original does."""
    from .tokenizer import load_tokenizer

    if not enabled():
        return load()

    def write(tok, tmp: Path) -> None:
        tok.save(tmp)
        if not _same_tokenizer(tok, load_tokenizer(tmp)):
            raise _NotSame

    return _through(entry(path, None, "tokenizers"), "tokenizer.json", load_tokenizer, load, write,
                    name="tokenizer", again=f"reading {path}")


class _NotSame(Exception):
    """A tokenizer whose tokenizer.json copy differs from it on a probe."""
