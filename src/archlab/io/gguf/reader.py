"""GGUF files (llama.cpp's format), read: the header, the metadata and the tensors, dequantized.

A GGUF file holds metadata (the architecture's hyperparameters under `{arch}.*`, the
tokenizer under `tokenizer.*`) and tensors, many of them quantized in blocks. The header is
parsed here (GGUFFile), checking every length the file declares against its size: a file that
cannot be parsed (truncated, corrupted, not GGUF) is a CheckpointError naming the file, never a
struct or numpy stack trace. Quantized tensors are dequantized with the `gguf` package
(llama.cpp's own Python reference) to float32 numpy arrays.

This module knows nothing of models and needs no torch, so that reading a GGUF vocabulary
(tokenizer.py) stays light; what the tensors mean to archlab is arch.py's and load.py's.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CheckpointError

__all__ = ["GGUFFile", "GGUFTensor", "SUPPORTED_TYPES"]

# Tensor types we dequantize. Each is checked in tests/test_gguf.py against an independent
# dequantizer (HF transformers' torch implementation, or the block layout written out by hand),
# so a type is listed here only once it is proven.
SUPPORTED_TYPES = frozenset(
    ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
     "MXFP4")  # GPT-OSS's experts, as llama.cpp's converter keeps them (GptOssModel.repack_mxfp4)
)
_GGUF_VERSIONS = (2, 3)  # v1 files predate 2023-08; llama.cpp no longer reads them either

_MISSING = object()


# ---- the file ---------------------------------------------------------------------------------

# GGUF metadata value types (llama.cpp's enum gguf_type) -> struct format of one scalar.
_SCALAR_FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "B", 10: "Q", 11: "q", 12: "d"}
_SCALAR_SIZES = {code: struct.calcsize("<" + fmt) for code, fmt in _SCALAR_FORMATS.items()}
_UINT32, _BOOL, _STRING, _ARRAY, _UINT64 = 4, 7, 8, 9, 10
_GGML_MAX_DIMS = 4  # llama.cpp rejects tensors with more dimensions
_DEFAULT_ALIGNMENT = 32
# The smallest a header entry can be: a metadata pair (key length, type, one byte of value) and a
# tensor info (name length, n_dims, type, offset). Counts are checked against the file's size
# with these before anything is looped over, so a corrupted count fails at once.
_MIN_KV_BYTES, _MIN_TENSOR_INFO_BYTES = 8 + 4 + 1, 8 + 4 + 4 + 8


class _Corrupt(Exception):
    """The header contradicts itself or the file's size; GGUFFile adds the file's name."""


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor as the header describes it. `shape` is in GGUF order (ggml's ne: the
    fastest-varying dimension first); `offset` is the file's own, relative to the data section."""

    name: str
    tensor_type: Any  # gguf.GGMLQuantizationType
    shape: tuple[int, ...]
    offset: int
    data_offset: int  # from the start of the file
    n_bytes: int


class _Header:
    """Walks a GGUF header in a memory-mapped file. Every length and count read from the file is
    checked against the bytes left before it is used, so a damaged file is a _Corrupt, never an
    allocation of a corrupted size or an IndexError."""

    def __init__(self, buf: mmap.mmap, order: str):
        self.buf, self.size, self.order = buf, len(buf), order
        self._u32 = struct.Struct(order + "I").unpack_from
        self._u64 = struct.Struct(order + "Q").unpack_from
        self._scalars = {code: struct.Struct(order + fmt).unpack_from for code, fmt in _SCALAR_FORMATS.items()}

    def need(self, off: int, n: int, what: str) -> None:
        if n > self.size - off:
            raise _Corrupt(f"{what} at byte {off} needs {n} bytes, but the file ends at byte {self.size}")

    def u32(self, off: int, what: str) -> int:
        self.need(off, 4, what)
        return self._u32(self.buf, off)[0]

    def u64(self, off: int, what: str) -> int:
        self.need(off, 8, what)
        return self._u64(self.buf, off)[0]

    def string(self, off: int, what: str) -> tuple[str, int]:
        n = self.u64(off, what)
        self.need(off + 8, n, what)
        try:
            return self.buf[off + 8:off + 8 + n].decode("utf-8"), off + 8 + n
        except UnicodeDecodeError as e:
            raise _Corrupt(f"{what} at byte {off} is not UTF-8 ({e})") from None

    def array_head(self, off: int, what: str) -> tuple[int, int, int]:
        """(item type, count, offset of the first item) of the array value at `off`."""
        itype, n = self.u32(off, what), self.u64(off + 4, what)
        off += 12
        if itype in _SCALAR_SIZES:
            self.need(off, n * _SCALAR_SIZES[itype], f"{what} ({n} items)")
        elif itype == _STRING:
            # each string is at least its 8-byte length: this bounds the loop before it starts
            self.need(off, n * 8, f"{what} ({n} strings)")
        elif itype == _ARRAY:
            raise _Corrupt(f"{what} at byte {off - 12} is an array of arrays, which llama.cpp does not read either")
        else:
            raise _Corrupt(f"{what} at byte {off - 12} is an array of unknown value type {itype}")
        return itype, n, off

    def skip(self, off: int, vtype: int, what: str) -> int:
        """The offset just past the value of type `vtype` at `off`, checking it lies in the file."""
        if vtype in _SCALAR_SIZES:
            self.need(off, _SCALAR_SIZES[vtype], what)
            return off + _SCALAR_SIZES[vtype]
        if vtype == _STRING:
            n = self.u64(off, what)
            self.need(off + 8, n, what)
            return off + 8 + n
        if vtype == _ARRAY:
            itype, n, off = self.array_head(off, what)
            if itype != _STRING:
                return off + n * _SCALAR_SIZES[itype]
            # The hot loop of a large vocabulary (~100k strings): only lengths, no decoding.
            buf, size, u64 = self.buf, self.size, self._u64
            for _ in range(n):
                if off + 8 > size:
                    break
                off += 8 + u64(buf, off)[0]
            else:
                if off <= size:
                    return off
            raise _Corrupt(f"{what} ({n} strings) runs past the end of the file (byte {size})")
        raise _Corrupt(f"{what} at byte {off - 4} has unknown value type {vtype}")

    def value(self, off: int, vtype: int, what: str) -> Any:
        """The value at `off` as Python data. Raises UnicodeDecodeError for a string that is not UTF-8."""
        if vtype in _SCALAR_FORMATS:
            self.need(off, _SCALAR_SIZES[vtype], what)
            v = self._scalars[vtype](self.buf, off)[0]
            return v != 0 if vtype == _BOOL else v
        if vtype == _STRING:
            n = self.u64(off, what)
            self.need(off + 8, n, what)
            return self.buf[off + 8:off + 8 + n].decode("utf-8")
        if vtype == _ARRAY:
            itype, n, off = self.array_head(off, what)
            if itype != _STRING:
                dtype = np.dtype(self.order + _SCALAR_FORMATS[itype])
                items = np.frombuffer(self.buf, dtype=dtype, count=n, offset=off)
                return (items != 0).tolist() if itype == _BOOL else items.tolist()
            out = []
            append, buf, size, u64 = out.append, self.buf, self.size, self._u64
            for _ in range(n):
                if off + 8 > size:
                    break
                start = off + 8
                off = start + u64(buf, off)[0]
                if off > size:
                    break
                append(buf[start:off].decode("utf-8"))
            else:
                return out
            raise _Corrupt(f"{what} ({n} strings) runs past the end of the file (byte {size})")
        raise _Corrupt(f"{what} at byte {off - 4} has unknown value type {vtype}")

    def parse(self) -> tuple[dict[str, tuple[int, int]], dict[str, GGUFTensor]]:
        """Metadata as key -> (value type, offset of the value), and the tensors."""
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

        # GGUFReader lists the fixed header fields as metadata too; so do we (they were visible before).
        fields = {"GGUF.version": (_UINT32, 4), "GGUF.tensor_count": (_UINT64, 8), "GGUF.kv_count": (_UINT64, 16)}
        n_tensors, n_kv = self.u64(8, "tensor count"), self.u64(16, "metadata count")
        off = 24
        if n_kv * _MIN_KV_BYTES + n_tensors * _MIN_TENSOR_INFO_BYTES > self.size - off:
            raise _Corrupt(f"the header declares {n_kv} metadata entries and {n_tensors} tensors, more than the file can hold")
        for i in range(n_kv):
            key, off = self.string(off, f"metadata key #{i}")
            vtype = self.u32(off, f"type of metadata {key!r}")
            if key in fields:
                raise _Corrupt(f"metadata key {key!r} appears twice")
            fields[key] = (vtype, off + 4)
            off = self.skip(off + 4, vtype, f"metadata {key!r}")

        infos = []
        for i in range(n_tensors):
            name, off = self.string(off, f"name of tensor #{i}")
            n_dims = self.u32(off, f"dimension count of tensor {name!r}")
            if n_dims > _GGML_MAX_DIMS:
                raise _Corrupt(f"tensor {name!r} has {n_dims} dimensions (ggml tensors have at most {_GGML_MAX_DIMS})")
            self.need(off + 4, 8 * n_dims, f"dimensions of tensor {name!r}")
            dims = struct.unpack_from(f"{self.order}{n_dims}Q", self.buf, off + 4)
            off += 4 + 8 * n_dims
            code, rel = self.u32(off, f"type of tensor {name!r}"), self.u64(off + 4, f"offset of tensor {name!r}")
            off += 12
            infos.append((name, dims, code, rel))

        alignment = _DEFAULT_ALIGNMENT
        if "general.alignment" in fields:
            vtype, at = fields["general.alignment"]
            alignment = self.value(at, vtype, "general.alignment") if vtype == _UINT32 else None
            if alignment is None or alignment == 0 or alignment & (alignment - 1):
                raise _Corrupt(f"general.alignment must be a UINT32 power of two, got {alignment!r} (value type {vtype})")
        data_start = -(-off // alignment) * alignment
        if infos and data_start > self.size:
            raise _Corrupt(f"the tensor data would start at byte {data_start} (the header's end rounded up to "
                           f"general.alignment {alignment}), past the end of the file")

        tensors: dict[str, GGUFTensor] = {}
        # llama.cpp (ggml/src/gguf.cpp, gguf_init_from_file_impl) accepts only one layout: the
        # tensors packed in header order, each at the previous one's end rounded up to the
        # alignment. Checking only the file's size would let a tensor point into its neighbour.
        expected = 0
        for name, dims, code, rel in infos:
            if name in tensors:
                raise _Corrupt(f"tensor {name!r} appears twice")
            try:
                ttype = GGMLQuantizationType(code)
                block, type_size = GGML_QUANT_SIZES[ttype]
            except (ValueError, KeyError):
                raise _Corrupt(f"tensor {name!r} has ggml type {code}, which is not a known ggml type") from None
            if dims and dims[0] % block:
                raise _Corrupt(f"tensor {name!r} ({ttype.name}) has rows of {dims[0]} values, not a multiple of its block size {block}")
            n_bytes = math.prod(dims) // block * type_size
            if rel != expected:
                raise _Corrupt(
                    f"tensor {name!r} has data offset {rel}, expected {expected} (the end of the tensor before it, "
                    f"rounded up to general.alignment {alignment}, as llama.cpp requires)"
                )
            expected = rel + -(-n_bytes // alignment) * alignment
            start = data_start + rel
            if start > self.size or n_bytes > self.size - start:
                raise _Corrupt(
                    f"data of tensor {name!r} ({n_bytes} bytes at byte {start}) runs past the end of the file (byte {self.size})"
                )
            tensors[name] = GGUFTensor(name, ttype, tuple(dims), rel, start, n_bytes)
        return fields, tensors


class GGUFFile:
    """Metadata and tensors of one GGUF file. The header is parsed here, from a memory map of the
    file (gguf.GGUFReader builds a numpy view per vocabulary string, seconds for a real
    vocabulary); metadata values are decoded when asked for, tensors when read."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._buf, self.byte_order = _map(self.path)
        self._header = _Header(self._buf, self.byte_order)
        try:
            self._fields, self.tensors = self._header.parse()
        except _Corrupt as e:
            raise CheckpointError(
                f"{self.path}: cannot be read as GGUF; the file may be truncated or corrupted ({len(self._buf)} bytes; {e})"
            ) from None
        self.architecture = self.value("general.architecture")
        if not isinstance(self.architecture, str):
            raise CheckpointError(f"{self.path}: GGUF metadata field 'general.architecture' = {self.architecture!r}; "
                                  f"expected a string, not {type(self.architecture).__name__}")

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def keys(self) -> list[str]:
        """The metadata keys in file order, after GGUF.version, GGUF.tensor_count and GGUF.kv_count."""
        return list(self._fields)

    def has(self, key: str) -> bool:
        return key in self._fields

    def value(self, key: str, default: Any = _MISSING) -> Any:
        """A metadata value as Python data (str, int, float, bool or a list of them)."""
        f = self._fields.get(key)
        if f is None:
            if default is _MISSING:
                raise CheckpointError(f"{self.path}: GGUF metadata field {key!r} is missing")
            return default
        try:
            return self._header.value(f[1], f[0], key)
        except (_Corrupt, UnicodeDecodeError) as e:
            raise CheckpointError(f"{self.path}: GGUF metadata field {key!r} cannot be read ({e}); the file may be corrupted") from None

    def length(self, key: str) -> int:
        """The number of items of an array field, without decoding them."""
        if key not in self._fields:
            raise CheckpointError(f"{self.path}: GGUF metadata field {key!r} is missing")
        vtype, off = self._fields[key]
        if vtype != _ARRAY:
            raise CheckpointError(f"{self.path}: GGUF metadata field {key!r} is not an array")
        return self._header.array_head(off, key)[1]

    def item_type(self, key: str) -> int | None:
        """The value type (llama.cpp's gguf_type) of an array field's items; None for a scalar."""
        vtype, off = self._fields[key]
        return self._header.array_head(off, key)[0] if vtype == _ARRAY else None

    def arch_value(self, suffix: str, default: Any = _MISSING) -> Any:
        """`{architecture}.{suffix}`, e.g. llama.block_count."""
        return self.value(f"{self.architecture}.{suffix}", default)

    def type_name(self, name: str) -> str:
        return self.tensors[name].tensor_type.name

    def shape(self, name: str) -> tuple[int, ...]:
        # GGUF lists dimensions fastest-first (ggml's ne[0] = columns); torch lists rows first.
        return tuple(reversed(self.tensors[name].shape))

    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes (read-only, in the file's byte order) shaped (..., bytes per row),
        as gguf.quants.dequantize takes them."""
        from gguf import GGML_QUANT_SIZES

        t = self.tensors[name]
        block, type_size = GGML_QUANT_SIZES[t.tensor_type]
        data = np.frombuffer(self._buf, dtype=np.uint8, count=t.n_bytes, offset=t.data_offset)
        row_bytes = (t.shape[0] if t.shape else 1) // block * type_size
        return data.reshape(*reversed(t.shape[1:]), row_bytes)

    def read(self, name: str) -> np.ndarray:
        """The tensor dequantized to a float32 array, rows first (numpy's and torch's order)."""
        from gguf.quants import dequantize

        t = self.tensors[name]
        data = self.raw(name)
        if self.byte_order == ">":
            # An F32/F16/BF16 element is one number, so reversing each one's bytes makes it
            # little-endian; quantized blocks mix fields of several sizes, which we cannot test.
            element = {"F32": 4, "F16": 2, "BF16": 2}.get(t.tensor_type.name)
            if element is None:
                raise CheckpointError(
                    f"{self.path}: tensor {name!r} is {t.tensor_type.name} in a big-endian GGUF file; "
                    "only F32, F16 and BF16 tensors are read from big-endian files"
                )
            data = data.reshape(-1, element)[:, ::-1].reshape(data.shape)
        try:
            values = dequantize(data, t.tensor_type)
            values = np.array(values, dtype=np.float32, copy=True).reshape(self.shape(name))
        except (ValueError, IndexError, TypeError, NotImplementedError) as e:
            raise CheckpointError(
                f"{self.path}: tensor {name!r} ({t.tensor_type.name}) cannot be dequantized ({e}); the file may be corrupted"
            ) from None
        finite = np.isfinite(values)
        if not finite.all():
            # no trained weight is NaN or infinite: such values are damage (llama.cpp's --check-tensors,
            # ggml_validate_row_data, refuses them too), and would make every logit NaN
            at = int(np.flatnonzero(~finite.reshape(-1))[0])
            raise CheckpointError(
                f"{self.path}: tensor {name!r} ({t.tensor_type.name}) holds {int((~finite).sum())} NaN or infinite values "
                f"(the first at flat index {at}: {values.reshape(-1)[at]}); the file may be corrupted"
            )
        return values


def _map(path: Path) -> tuple[mmap.mmap, str]:
    """The file memory-mapped read-only, and its byte order ('<' or '>'), after checking the magic
    bytes and the version."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: too short to be a GGUF file ({size} bytes); truncated?")
        if head[:4] != b"GGUF":
            raise CheckpointError(
                f"{path}: not a GGUF file (starts with {head[:4]!r}, expected the magic bytes b'GGUF'; size {size} bytes)"
            )
        version = struct.unpack("<I", head[4:8])[0]
        if version in _GGUF_VERSIONS:
            order = "<"
        elif struct.unpack(">I", head[4:8])[0] in _GGUF_VERSIONS:
            order = ">"  # written for a big-endian machine (gguf-py's --bigendian)
        else:
            raise CheckpointError(f"{path}: GGUF version {version} is not supported (supported: {_GGUF_VERSIONS})")
        try:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), order
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{path}: cannot be memory-mapped ({e})") from None
