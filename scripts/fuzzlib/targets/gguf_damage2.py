"""Whole-file damage to a GGUF file: bytes flipped, cut short, keys removed or listed twice, lying
counts, alignment, magic and version, rope_freqs divisors, vocabulary arrays of unequal lengths.
What counts as `bad` follows ggml/src/gguf.cpp (gguf_init_from_file_impl) and llama.cpp's loaders;
see gguf_damage.py."""

from __future__ import annotations

import math
import random
import struct

import numpy as np

from .gguf_bytes import ARR, F32, I32, KV, STR, U32, U64, Parts, decode, encode, serialize
from .gguf_damage import FILE, VOCAB_ARRAYS, Damage, _value


def _nbytes(parts: Parts) -> list[int]:
    import gguf

    out = []
    for t in parts.infos:
        block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(t.ttype)]
        out.append(math.prod(t.dims) // block * size)
    return out


def _data_end(parts: Parts) -> int:
    """Where the last tensor's bytes end, from the start of the file."""
    start = len(serialize(parts)) - len(parts.data)
    return start + max(t.offset + n for t, n in zip(parts.infos, _nbytes(parts)))


def _relayout(parts: Parts, alignment: int) -> Parts:
    """The same tensors packed as gguf-py packs them with general.alignment = `alignment`."""
    p = parts.copy()
    p.kvs.insert(1, KV(b"general.alignment", U32, encode(U32, alignment)))
    data, off = bytearray(), 0
    for t, n in zip(p.infos, _nbytes(parts)):
        data += parts.data[t.offset:t.offset + n]
        t.offset = off
        off += n
        data += b"\0" * (-off % alignment)
        off = len(data)
    p.data, p.alignment = bytes(data), alignment
    return p


def _big_endian(parts: Parts) -> Parts:
    """The file as gguf-py writes it with endianess=BIG: every header number and F32/F16/BF16 element
    byte-swapped; quantized blocks are uint8 arrays to gguf-py, written as they are."""
    p = parts.copy()
    p.order = ">"
    for kv in p.kvs:
        value, item = decode(kv.vtype, kv.payload)
        kv.payload = encode(kv.vtype, value, item, order=">")
    data = bytearray(p.data)
    for t, n in zip(p.infos, _nbytes(parts)):
        size = {0: 4, 1: 2, 30: 2}.get(t.ttype)  # F32, F16, BF16 (gguf.GGMLQuantizationType)
        if size:
            data[t.offset:t.offset + n] = np.frombuffer(p.data, np.uint8, n, t.offset).reshape(-1, size)[:, ::-1].tobytes()
    p.data = bytes(data)
    return p


def _with(p: Parts, key: bytes, vtype: int, payload: bytes) -> Parts:
    p = p.copy()
    p.kvs.insert(1, KV(key, vtype, payload))
    return p


def file_damage(parts: Parts, rng: random.Random, what: str = "") -> Damage:
    content = serialize(parts)
    head = len(content) - len(parts.data)  # the header: everything before the (aligned) data section
    keys = [kv.key for kv in parts.kvs]
    what = what or rng.choice(["flip", "flip", "truncate", "truncate", "delete", "duplicate", "counts", "alignment",
                               "magic", "version", "trailing", "flip-data", "big-endian"])
    if what == "flip":
        b = bytearray(content)
        spots = [rng.randrange(head) for _ in range(rng.randint(1, 4))]
        for at in spots:
            b[at] ^= 1 << rng.randrange(8)
        return Damage("flip-header", f"bits flipped at bytes {spots}", bytes(b), False, (FILE,))
    if what == "flip-data":
        # A valid file with other weights. Only each byte's lowest bit: that changes an F32 exponent by 2 at
        # most and an F16 one (or a quantized block's fp16 scale) not at all, so the weights stay of their
        # size; a flip making a norm weight 1e38 is valid GGUF that overflows in any reader (llama.cpp too)
        b = bytearray(content)
        spots = [rng.randrange(head, len(b)) for _ in range(rng.randint(1, 8))]
        for at in spots:
            b[at] ^= 1
        return Damage("flip-data", f"bits flipped at bytes {spots}", bytes(b), False, (FILE,))
    if what == "big-endian":  # a valid file (gguf-py's --bigendian), whatever tensors a reader can swap back
        return Damage("big-endian", "written big-endian", serialize(_big_endian(parts)), False, (FILE,))
    if what == "truncate":
        end = _data_end(parts)
        cut = rng.randrange(head) if rng.random() < 0.5 else rng.randrange(end)
        return Damage("truncate", f"cut at byte {cut} of {len(content)}", content[:cut], True, (FILE,))
    if what == "trailing":
        extra = bytes(rng.randrange(256) for _ in range(rng.choice([1, 7, 4096])))
        return Damage("trailing", f"{len(extra)} bytes appended", content + extra, False, (FILE,))
    if what == "delete":
        p = parts.copy()
        i = rng.randrange(len(p.kvs))
        key = p.kvs.pop(i).key.decode()
        return Damage("delete-key", f"{key} removed", serialize(p), False, (key, FILE))
    if what == "duplicate":  # gguf.cpp: "duplicate key" refuses the file
        p = parts.copy()
        i = rng.randrange(len(p.kvs))
        kv = p.kvs[i]
        copy = KV(kv.key, kv.vtype, kv.payload) if rng.random() < 0.5 else KV(kv.key, STR, encode(STR, "other"))
        p.kvs.insert(rng.randrange(len(p.kvs) + 1), copy)
        return Damage("duplicate-key", f"{kv.key.decode()} listed twice", serialize(p), True, (kv.key.decode(), FILE))
    if what == "counts":
        p = parts.copy()
        which = rng.randrange(2)
        true = (len(p.infos), len(p.kvs))[which]
        new = rng.choice([true + 1, true + 1000, 2**63, 2**64 - 1, max(true - 1, 0) if true else 1, 2**32 + true])
        p.counts = (new, None) if which == 0 else (None, new)
        # a count one short can leave the file valid: the last entry's bytes then lie in the padding before
        # the data section (when the aligned data start stays where it was), which no reader looks at
        return Damage("counts", f"{('tensor', 'kv')[which]} count {true} -> {new}", serialize(p), new > true, (FILE,))
    if what == "alignment":
        r = rng.random()
        if r < 0.35:  # a valid layout with another alignment: gguf-py writes such files (add_custom_alignment)
            a = rng.choice([1, 8, 64, 256, 4096])
            return Damage("alignment-valid", f"relaid with alignment {a}", serialize(_relayout(parts, a)), False, (FILE,))
        vt, v = rng.choice([(U32, 0), (U32, 3), (U32, 48), (U32, 2**31), (U32, 2**32 - 1), (F32, 32.0), (U64, 32),
                            (STR, "32"), (I32, -32), (ARR, [32])])
        payload = encode(ARR, v, U32) if vt == ARR else encode(vt, v)
        # gguf.cpp: not a power of two is refused, and gguf_get_val_u32 asserts the type; 2**31 lies past the file
        return Damage("alignment-bad", f"general.alignment = {v!r} (type {vt})", serialize(_with(parts, b"general.alignment", vt, payload)),
                      True, ("general.alignment",))
    if what == "magic":
        magic = rng.choice([b"GGUG", b"gguf", b"\0\0\0\0", b"FUGG", b"GGML"])
        return Damage("magic", f"magic {magic!r}", magic + content[4:], True, (FILE,))
    if what == "version":
        v = rng.choice([0, 1, 2, 4, 2**32 - 1, "big"])
        if v == "big":  # a big-endian version with the rest little-endian: the counts read as huge
            return Damage("version", "version written big-endian", content[:4] + struct.pack(">I", 3) + content[8:], True, (FILE,))
        # v2 differs from v3 only in v1's 32-bit lengths, which v2 already widened: a v2 file reads the same
        return Damage("version", f"version {v}", content[:4] + struct.pack("<I", v) + content[8:], v != 2, (FILE,))
    if what == "rope" and any(t.name == b"rope_freqs.weight" for t in parts.infos):
        t = next(t for t in parts.infos if t.name == b"rope_freqs.weight")
        n = math.prod(t.dims)
        divisors = np.frombuffer(parts.data, np.float32, n, t.offset).copy()
        v = rng.choice([0.0, math.nan, math.inf, -math.inf, -1.0, -8.0])
        idx = rng.sample(range(n), rng.randint(1, n))
        divisors[idx] = v
        p = parts.copy()
        p.data = parts.data[:t.offset] + divisors.tobytes() + parts.data[t.offset + 4 * n:]
        # llama.cpp divides each frequency by these (ggml_rope_ext's freq_factors)
        return Damage("rope-freqs", f"rope_freqs.weight[{len(idx)} entries] = {v}", serialize(p), True, ("rope_freqs.weight",))
    if what == "vocab" and b"tokenizer.ggml.tokens" in keys:
        p = parts.copy()
        present = [k for k in (*VOCAB_ARRAYS, "tokenizer.chat_template") if k.encode() in keys]
        key = rng.choice(present)
        i = p.index(key)
        if key == "tokenizer.chat_template":
            vt, v = rng.choice([(U32, 3), (ARR, ["{{ x }}"]), (F32, 1.0)])
            p.kvs[i] = KV(p.kvs[i].key, vt, encode(ARR, v, STR) if vt == ARR else encode(vt, v))
            return Damage("vocab-chat-template", f"chat_template -> {v!r}", serialize(p), True, (key,))
        items, item = decode(ARR, p.kvs[i].payload)
        items = items[:-rng.randint(1, 5)] if rng.random() < 0.5 else items + items[-rng.randint(1, 5):]
        p.kvs[i] = KV(p.kvs[i].key, ARR, encode(ARR, items, item))
        # one entry per token in each (llama_vocab::impl::load indexes scores and types by token id)
        return Damage("vocab-length", f"{key} has {len(items)} entries", serialize(p), True, (key, FILE))
    return _value(parts, rng)
