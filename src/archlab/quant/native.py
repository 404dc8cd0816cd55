"""The C decode kernel (quant/gemv.c): compiled once per machine, loaded through ctypes.

The library is built with the system C compiler (`$CC`, else gcc or cc) into
$ARCHLAB_CACHE/kernels/ (default ~/.cache/archlab), named by a hash of the source, the flags and
the compiler, written to a temporary and renamed into place, so that concurrent first uses
neither clash nor load a half-written file. Without a compiler, or with ARCHLAB_NATIVE=0, or if
the build fails, `gemv` returns None and the caller uses another kernel (said once, as a warning).

Why ctypes and not a torch C++ extension: a plain C file builds in about a second with no torch
headers and no ninja, and the call costs a few microseconds; under torch.compile the kernel is a
custom op (archlab::packed_gemv) so that dynamo does not break the graph at it."""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from importlib import resources
from pathlib import Path

import torch

from ..io.files import cache_dir
from .packed import PackedWeight

__all__ = ["available", "gemv", "MAX_ROWS"]

MAX_ROWS = 16  # MAXM in gemv.c
FLAGS = ["-O3", "-march=native", "-fopenmp", "-ffp-contract=fast", "-shared", "-fPIC"]
_lock = threading.Lock()
_lib = None  # the loaded library, False once it could not be had
_why: str | None = None


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "gcc", "cc"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _build() -> ctypes.CDLL:
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set $CC, or install gcc)")
    source = resources.files("archlab.quant").joinpath("gemv.c").read_bytes()
    version = subprocess.run([cc, "--version"], capture_output=True, timeout=30).stdout
    key = hashlib.sha256(source + b"\0" + " ".join(FLAGS).encode() + b"\0" + version).hexdigest()[:16]
    folder = cache_dir() / "kernels"
    target = folder / f"gemv-{key}.so"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            src = Path(tmp) / "gemv.c"
            src.write_bytes(source)
            out = Path(tmp) / "gemv.so"
            done = subprocess.run([cc, *FLAGS, str(src), "-o", str(out)], capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"{cc} failed: {done.stderr.strip()[-500:]}")
            os.replace(out, target)
    lib = ctypes.CDLL(str(target))
    f = lib.archlab_gemv
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    f.argtypes = [ctypes.c_int, p, i64, i64, p, p, p, i64, i64, ctypes.c_int, p, ctypes.c_int]
    f.restype = ctypes.c_int
    return lib


def _load():
    global _lib, _why
    if _lib is None:
        with _lock:
            if _lib is None:
                if os.environ.get("ARCHLAB_NATIVE", "1") == "0":
                    _why = "ARCHLAB_NATIVE=0"
                    _lib = False
                elif sys.platform == "win32":
                    _why = "not built on Windows"
                    _lib = False
                else:
                    try:
                        _lib = _build()
                    except Exception as e:  # a missing or failing compiler: another kernel serves
                        _why = f"{type(e).__name__}: {e}"
                        _lib = False
                        warnings.warn(f"archlab.quant: the C decode kernel is unavailable ({_why}); packed weights "
                                      "use the slower dequantize path", RuntimeWarning, stacklevel=3)
    return _lib


def available() -> bool:
    return bool(_load())


def why_unavailable() -> str | None:
    _load()
    return _why


def kernel_layout(w: PackedWeight) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(scale, min) as the kernel takes them, or None when it cannot take this weight: blocks of
    at most 256 columns (per-channel scales are repeated per 64 columns), 4-bit blocks within a
    half of the row, CPU float32 contiguous scales."""
    n, k = w.shape
    scale, mn = w.scale, w.min
    block = w.block
    if block > 256:
        if block % 64:
            return None
        rep = block // 64
        scale = scale.repeat_interleave(rep, dim=1)
        mn = None if mn is None else mn.repeat_interleave(rep, dim=1)
        block = 64
    if w.bits == 4 and (scale.shape[1] % 2 or (k // 2) % block):
        return None
    if w.bits not in (4, 8) or w.q.device.type != "cpu":
        return None
    return scale.float().contiguous(), None if mn is None else mn.float().contiguous()


class Prepared:
    """One weight made ready for the kernel: its tensors and their addresses held, so that a decode
    step's call is the ctypes call and an output allocation (QuantLinear's per-token path)."""

    def __init__(self, w: PackedWeight, scale: torch.Tensor, mn: torch.Tensor | None):
        # the tensors the arguments were made from: an in-place change of them (a user's copy_())
        # makes the derived ones (a repeated per-channel scale) stale, seen by stale()
        self.q = w.q.contiguous()
        self.sources = [(src, src._version) for src, used in ((w.q, self.q), (w.scale, scale), (w.min, mn))
                        if src is not None and used is not src]
        self.scale, self.mn = scale, mn
        self.n, self.k = w.shape
        self.args = (w.bits, self.q.data_ptr(), scale.data_ptr(), None if mn is None else mn.data_ptr(), self.n,
                     scale.shape[1], w.offset)

    def stale(self) -> bool:
        return any(t._version != v for t, v in self.sources)

    def __call__(self, x: torch.Tensor) -> torch.Tensor | None:
        """x (M, K) contiguous float32, M <= MAX_ROWS -> (M, N), or None if the kernel declines."""
        m = x.shape[0]
        out = torch.empty(m, self.n, dtype=torch.float32)
        bits, q, scale, mn, n, nb, offset = self.args
        rc = _lib.archlab_gemv(bits, x.data_ptr(), m, self.k, q, scale, mn, n, nb, offset, out.data_ptr(),
                               torch.get_num_threads())
        return out if rc == 0 else None


def prepare(w: PackedWeight) -> Prepared | None:
    """A Prepared for `w`, or None where the kernel is unavailable or cannot take the layout."""
    if not _load():
        return None
    layout = kernel_layout(w)
    return None if layout is None else Prepared(w, *layout)


def gemv(x: torch.Tensor, w: PackedWeight, scale: torch.Tensor, mn: torch.Tensor | None) -> torch.Tensor | None:
    """x (M, K) float32 -> (M, N) for (scale, mn) = kernel_layout(w), or None when the kernel is
    unavailable or declines the shape (a Prepared made for one call)."""
    if not _load() or not 1 <= x.shape[0] <= MAX_ROWS:
        return None
    return Prepared(w, scale, mn)(x.contiguous())
