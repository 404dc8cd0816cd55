"""Hostile GGUF files (issue 12): files written by gguf-py (llama.cpp's own writer) and then
damaged on purpose. Each must either read as gguf-py wrote it or be a CheckpointError that names
the file and what is wrong; never garbage, a stray exception or a huge allocation."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from archlab.errors import CheckpointError
from archlab.io.gguf import GGUFFile

gguf = pytest.importorskip("gguf")
Q = gguf.GGMLQuantizationType

_FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _write(path: Path, sizes: list[int], alignment: int) -> Path:
    """A GGUF with F32 tensors t0, t1, ... of the given sizes, as gguf-py lays them out."""
    w = gguf.GGUFWriter(str(path), "llama")
    if alignment != 32:
        w.add_custom_alignment(alignment)
    for i, n in enumerate(sizes):
        w.add_tensor(f"t{i}", np.arange(n, dtype=np.float32) + 1000 * i)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _offset_fields(path: Path) -> dict[str, int]:
    """Where each tensor's offset lies in the file, found with gguf-py's own reader (the field's
    last 8 bytes: GGUFWriter.write_ti_data_to_file)."""
    r = gguf.GGUFReader(str(path))
    return {t.name: t.field.offset + sum(p.nbytes for p in t.field.parts) - 8 for t in r.tensors}


# ---- item 1: a tensor's offset must be the running aligned one ------------------------------------

@_FAST
@given(sizes=st.lists(st.integers(1, 40), min_size=2, max_size=5), alignment=st.sampled_from([8, 32, 64]),
       victim=st.integers(0, 4), new=st.integers(0, 2**20))
def test_tensor_offset_other_than_the_running_aligned_one_is_refused(sizes, alignment, victim, new):
    with tempfile.TemporaryDirectory() as d:
        path = _write(Path(d) / "t.gguf", sizes, alignment)
        ok = GGUFFile(path)  # as written by gguf-py: every tensor reads back its own values
        for i, n in enumerate(sizes):
            np.testing.assert_array_equal(ok.read(f"t{i}"), np.arange(n, dtype=np.float32) + 1000 * i)
        name = f"t{victim % len(sizes)}"
        expected = ok.tensors[name].offset
        new = new if new != expected else expected + alignment  # e.g. 0: pointing into t0
        content = bytearray(path.read_bytes())
        struct.pack_into("<Q", content, _offset_fields(path)[name], new)
        path.write_bytes(bytes(content))
        with pytest.raises(CheckpointError, match=rf"t\.gguf: .*tensor '{name}' has data offset {new}, expected {expected} "):
            GGUFFile(path)
