"""A GGUF file as editable parts (metadata entries, tensor infos, the data section) and back to bytes,
for the gguf target's damage. Parsed with gguf-py's own GGUFReader (llama.cpp's reference), never
with archlab's reader; `serialize` of an unedited parse gives the file back byte for byte (checked
when the seeds are made), so every difference in a damaged file is the damage alone."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# GGUF value types (llama.cpp's enum gguf_type)
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "B", U64: "Q", I64: "q", F64: "d"}
INTS = (U8, I8, U16, I16, U32, I32, U64, I64)
FLOATS = (F32, F64)


@dataclass
class KV:
    key: bytes
    vtype: int
    payload: bytes  # the value's bytes as the file holds them


@dataclass
class Info:
    name: bytes
    dims: list[int]
    ttype: int
    offset: int
    n_dims: int | None = None  # written instead of len(dims) when set (a lying dimension count)


@dataclass
class Parts:
    version: int
    kvs: list[KV]
    infos: list[Info]
    data: bytes
    alignment: int = 32
    counts: tuple[int | None, int | None] = (None, None)  # written instead of the true tensor / kv counts
    order: str = "<"
    extra: dict = field(default_factory=dict)

    def copy(self) -> "Parts":
        return Parts(self.version, [KV(k.key, k.vtype, k.payload) for k in self.kvs],
                     [Info(i.name, list(i.dims), i.ttype, i.offset, i.n_dims) for i in self.infos], self.data,
                     self.alignment, self.counts, self.order)

    def index(self, key: str) -> int:
        return next(i for i, kv in enumerate(self.kvs) if kv.key == key.encode())


def parse(path: Path) -> Parts:
    import gguf

    r = gguf.GGUFReader(str(path))
    buf = bytes(Path(path).read_bytes())
    kvs = []
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        start = f.offset + 8 + len(name.encode()) + 4
        end = f.offset + sum(p.nbytes for p in f.parts)
        kvs.append(KV(name.encode(), int(f.types[0]), buf[start:end]))
    infos = []
    for t in r.tensors:
        off = t.field.offset + sum(p.nbytes for p in t.field.parts) - 8
        infos.append(Info(t.name.encode(), [int(d) for d in t.shape], int(t.tensor_type), struct.unpack_from("<Q", buf, off)[0]))
    alignment = int(r.alignment)
    return Parts(int(r.fields["GGUF.version"].parts[0][0]), kvs, infos, buf[r.data_offset:], alignment)


def serialize(p: Parts) -> bytes:
    o = p.order
    n_t = len(p.infos) if p.counts[0] is None else p.counts[0]
    n_kv = len(p.kvs) if p.counts[1] is None else p.counts[1]
    out = bytearray(b"GGUF" + struct.pack(o + "IQQ", p.version, n_t, n_kv))
    for kv in p.kvs:
        out += struct.pack(o + "Q", len(kv.key)) + kv.key + struct.pack(o + "I", kv.vtype) + kv.payload
    for t in p.infos:
        out += struct.pack(o + "Q", len(t.name)) + t.name
        out += struct.pack(o + "I", len(t.dims) if t.n_dims is None else t.n_dims)
        out += b"".join(struct.pack(o + "Q", d) for d in t.dims) + struct.pack(o + "IQ", t.ttype, t.offset)
    align = p.alignment if 0 < p.alignment <= 1 << 20 else 32
    out += b"\0" * (-len(out) % align)
    return bytes(out) + p.data


def encode(vtype: int, value: Any, itype: int | None = None, order: str = "<") -> bytes:
    """The payload of one metadata value (a list for ARR, its items of type `itype`)."""
    if vtype == STR:
        b = value if isinstance(value, bytes) else str(value).encode()
        return struct.pack(order + "Q", len(b)) + b
    if vtype == ARR:
        return struct.pack(order + "IQ", itype, len(value)) + b"".join(encode(itype, v, order=order) for v in value)
    fmt = SCALAR[vtype]
    if vtype in FLOATS:
        return struct.pack(order + fmt, float(value))
    bits = 8 * struct.calcsize(fmt)
    v = int(value) % (1 << bits)  # wrapped to the width, as a C cast would
    return struct.pack(order + fmt, v if fmt.isupper() or v < 1 << (bits - 1) else v - (1 << bits))


def decode(vtype: int, payload: bytes, order: str = "<") -> tuple[Any, int | None]:
    """(value, item type) of a payload; strings as str (bytes when not UTF-8)."""
    def one(t: int, off: int) -> tuple[Any, int]:
        if t == STR:
            n = struct.unpack_from(order + "Q", payload, off)[0]
            b = payload[off + 8:off + 8 + n]
            try:
                return b.decode(), off + 8 + n
            except UnicodeDecodeError:
                return b, off + 8 + n
        fmt = SCALAR[t]
        v = struct.unpack_from(order + fmt, payload, off)[0]
        return (bool(v) if t == BOOL else v), off + struct.calcsize(fmt)

    if vtype != ARR:
        return one(vtype, 0)[0], None
    itype, n = struct.unpack_from(order + "IQ", payload, 0)
    off, items = 12, []
    for _ in range(n):
        v, off = one(itype, off)
        items.append(v)
    return items, itype


def finite(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(finite(x) for x in v)
    return True
