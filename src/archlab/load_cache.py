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
ARCHLAB_LOAD_CACHE=0 turns it off."""

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


def entry(path: Path, dtype) -> Path:
    """The cache folder for GGUF file `path` loaded with quant="keep" in `dtype`."""
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(HEADER_BYTES))
    h.update(f"{st.st_size}:{st.st_mtime_ns}:{dtype}:{code_hash()}".encode())
    return cache_dir() / "loaded" / f"{path.stem[:60]}-{h.hexdigest()[:24]}"


def _prune(newest: Path) -> None:
    """The entries of the same file name beyond the KEEP most recently written, removed."""
    import shutil

    stem = newest.name.rsplit("-", 1)[0]
    same = [p for p in newest.parent.glob(f"{stem}-*") if p.is_dir() and p.name.rsplit("-", 1)[0] == stem]
    for old in sorted(same, key=lambda p: p.stat().st_mtime, reverse=True)[KEEP:]:
        if old != newest:
            shutil.rmtree(old, ignore_errors=True)


def load_kept(path: Path, dtype, load: Callable):
    """load() (a GGUF loaded with quant="keep" on the CPU), or its cached copy; a fresh load is
    written into the cache for next time."""
    from .io.quantized import load_quantized, save_quantized
    from .model import resolve_dtype

    if not enabled():
        return load()
    dtype = resolve_dtype(dtype)
    folder = entry(path, dtype)
    if (folder / "quantization.json").is_file():
        try:
            return load_quantized(folder, dtype=dtype)
        # damaged (safetensors raises its own SafetensorError, no subclass of these): load again, replace it
        except Exception as e:  # noqa: BLE001 -- any failure of a cache only costs a slower load, said
            warnings.warn(f"archlab: the load cache {folder} is unreadable ({type(e).__name__}: {e}); "
                          f"loading {path} again", RuntimeWarning)
    model = load()
    try:
        from .io.atomic import atomic_directory

        with atomic_directory(folder, overwrite=True) as tmp:
            save_quantized(model, tmp, "keep", overwrite=True)
        _prune(folder)
    except OSError as e:
        warnings.warn(f"archlab: could not write the load cache {folder} ({e}); the next load converts again",
                      RuntimeWarning)
    return model
