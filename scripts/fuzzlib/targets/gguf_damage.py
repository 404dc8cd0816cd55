"""Damage to a GGUF file's parts, and when it is certainly invalid (`bad`).

A damage is `bad` only where llama.cpp's format or loader refuses it (ggml/src/gguf.cpp,
gguf_init_from_file_impl: duplicate keys or tensor names, offsets other than the packed ones,
alignment not a power of two, counts past the file; src/llama-model-loader.cpp GGUFMeta: a key of
the wrong type) or where the file can no longer describe its own tensors (a shape, type or count
that the data does not have). A change that may still be a valid file (another integer width,
a key removed, a merge dropped, a byte flipped somewhere) is not bad: then only a crash, hang or
huge allocation counts, or outputs that are not finite."""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass
from typing import Any

from .gguf_bytes import ARR, BOOL, F32, F64, FLOATS, I32, I64, INTS, KV, STR, U8, U32, U64, Info, Parts, decode, encode, finite, serialize

FILE = "model.gguf"
NAN, INF = math.nan, math.inf
FIXED = [(U32, 0, None), (U32, 1, None), (I32, -1, None), (U32, 2**32 - 1, None), (U64, 2**63, None),
         (U64, 2**64 - 1, None), (I64, -(2**63), None), (F32, NAN, None), (F32, INF, None), (F32, -INF, None),
         (F32, 2.5, None), (F32, 0.0, None), (F64, 1e308, None), (F32, -1.0, None), (BOOL, True, None),
         (BOOL, False, None), (STR, "", None), (STR, "x", None), (STR, "llama", None), (STR, b"\xff\xfe", None),
         (ARR, [1, 2, 3], U32), (ARR, ["a", "b"], STR), (ARR, [], U32), (ARR, [NAN], F32), (ARR, [], STR)]
# keys sizing tensors: a thousandfold value cannot match the file's tensors
BLOWUP = ("block_count", "attention.head_count", "attention.head_count_kv", "expert_count", "expert_used_count",
          "embedding_length", "feed_forward_length", "expert_feed_forward_length", "attention.key_length",
          "attention.value_length", "vocab_size", "expert_shared_count", "attention.kv_lora_rank", "attention.q_lora_rank")
# one entry per token in each (llama.cpp's llama_vocab::impl::load indexes them by token id)
VOCAB_ARRAYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type")


@dataclass
class Damage:
    kind: str
    detail: str
    content: bytes
    bad: bool
    names: tuple[str, ...] = ()


def _cls(vtype: int, item: int | None = None) -> str:
    if vtype == ARR:
        return "arr:" + _cls(item)
    return "int" if vtype in INTS else "float" if vtype in FLOATS else "bool" if vtype == BOOL else "str" if vtype == STR else "?"


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _derived(rng: random.Random, vtype: int, v: Any, item: int | None) -> tuple[int, Any, int | None]:
    c = _cls(vtype, item)
    if c == "int":
        return rng.choice([(rng.choice(INTS), v, None), (vtype, v + 1, None), (vtype, max(v - 1, 0), None), (U64, v * 2, None),
                           (U64, v * 1024, None), (I64, -v, None), (F32, float(v), None), (STR, str(v), None),
                           (ARR, [v] * 3, U32), (ARR, [v, v + 1], U32), (BOOL, bool(v), None)])
    if c == "float":
        return rng.choice([(F64, v, None), (U32, int(v) if math.isfinite(v) else 0, None), (vtype, v * 2, None), (vtype, -v, None),
                           (vtype, 0.0, None), (vtype, NAN, None), (vtype, INF, None), (STR, repr(v), None), (ARR, [v], F32)])
    if c == "bool":
        return rng.choice([(BOOL, not v, None), (U8, 2, None), (U32, int(v), None), (STR, str(v).lower(), None)])
    if c == "str":
        s = v if isinstance(v, str) else v.decode("latin-1")
        return rng.choice([(STR, s.upper(), None), (STR, s + "_x", None), (STR, "", None), (STR, s * 1000, None),
                           (STR, s.encode()[:1] + b"\xc3", None), (ARR, [s], STR), (U32, 3, None)])
    n = len(v)
    choices = [(ARR, v[:-1], item), (ARR, v + v[-1:], item), (ARR, [], item), (ARR, v[::-1], item)] if v else [(ARR, [0], U32)]
    if v:
        bad_item = {STR: rng.choice(["", b"\xff", "x" * 5000]), F32: rng.choice([NAN, INF, -1e38]),
                    I32: rng.choice([-1, 2**31 - 1]), U32: rng.choice([0, 2**32 - 1])}.get(item, 0)
        i = rng.randrange(n)
        choices += [(ARR, v[:i] + [bad_item] + v[i + 1:], item), (ARR, list(range(n)), U32),
                    (ARR, [float(x) if isinstance(x, (int, float)) else 0.0 for x in v], F32), (_scalar(item), v[0], None)]
    return rng.choice(choices)


def _scalar(item: int | None) -> int:
    return item if item is not None and item != ARR else U32


def bad_value(key: str, old: tuple[int, Any, int | None], new: tuple[int, Any, int | None]) -> bool:
    (otype, oval, oitem), (ntype, nval, nitem) = old, new
    if not finite(nval):
        return True
    oc, nc = _cls(otype, oitem), _cls(ntype, nitem)
    if oc != nc:
        # lenient where a reader may be: an integer where a float goes, llama.cpp's per-layer array form of
        # a count (get_key_or_arr), integers in a float array
        return (oc, nc) not in (("float", "int"), ("int", "arr:int"), ("arr:float", "arr:int"))
    if key in VOCAB_ARRAYS and len(nval) != len(oval):
        return True
    if nc == "int" and not key.endswith("token_id"):
        if nval < 0 <= oval or abs(nval) >= 2**40:
            return True
        if key.split(".", 1)[-1] in BLOWUP and oval > 0 and nval >= 1024 * oval:
            return True
    return False


def _kv_value(parts: Parts, i: int) -> tuple[int, Any, int | None]:
    kv = parts.kvs[i]
    v, item = decode(kv.vtype, kv.payload)
    return kv.vtype, v, item


def _value(parts: Parts, rng: random.Random, prefix: str = "") -> Damage:
    p = parts.copy()
    i = rng.choice([i for i, kv in enumerate(p.kvs) if kv.key.startswith(prefix.encode())])
    key = p.kvs[i].key.decode()
    old = _kv_value(p, i)
    new = _derived(rng, *old) if rng.random() < 0.6 else rng.choice(FIXED)
    p.kvs[i] = KV(p.kvs[i].key, new[0], encode(new[0], new[1], new[2]))
    new = _kv_value(p, i)  # what the file holds (an integer wrapped to its width)
    bad = bad_value(key, old, new)
    type_error = bad and (_cls(old[0], old[2]) != _cls(new[0], new[2]) or not finite(new[1]))
    return Damage(f"value-{_cls(old[0], old[2])}-to-{_cls(new[0], new[2])}",
                  f"{key}: {_short(old[1])} -> {_short(new[1])} (type {new[0]})", serialize(p), bad,
                  (key,) if type_error else (key, FILE))


def _blowup(parts: Parts, rng: random.Random) -> Damage:
    p = parts.copy()
    keys = [i for i, kv in enumerate(p.kvs) if kv.key.decode().split(".", 1)[-1] in BLOWUP and kv.vtype in INTS]
    i = rng.choice(keys)
    key, old = p.kvs[i].key.decode(), _kv_value(p, i)
    new = rng.choice([old[1] * 1024, old[1] << 20, 2**31, 2**32 - 1, 10**6, 2**63, 2**64 - 1])
    vt = U64 if new >= 2**31 else U32
    p.kvs[i] = KV(p.kvs[i].key, vt, encode(vt, new))
    return Damage("blowup", f"{key}: {old[1]} -> {new}", serialize(p), bad_value(key, old, (vt, new, None)), (key, FILE))


def _raw_length(parts: Parts, rng: random.Random) -> Damage:
    """A string or array length field set past the file: a damaged or hostile length."""
    p = parts.copy()
    i = rng.choice([i for i, kv in enumerate(p.kvs) if kv.vtype in (STR, ARR)])
    kv = p.kvs[i]
    at = 0 if kv.vtype == STR else 4
    old = struct.unpack_from("<Q", kv.payload, at)[0]
    new = rng.choice([2**63, 2**64 - 1, old + 1, old * 1000 + 1, len(serialize(p)), 2**32 + old])
    payload = bytearray(kv.payload)
    struct.pack_into("<Q", payload, at, new)
    p.kvs[i] = KV(kv.key, kv.vtype, bytes(payload))
    # past the end of the file, or shifting every later field: either way the file no longer parses as written
    return Damage("raw-length", f"{kv.key.decode()}: length {old} -> {new}", serialize(p), True, (FILE,))


def _tensor_info(parts: Parts, rng: random.Random) -> Damage:
    import gguf

    p = parts.copy()
    i = rng.randrange(len(p.infos))
    t = p.infos[i]
    name = t.name.decode()
    what = rng.choice(["dims", "reverse", "type", "offset", "name", "n_dims", "duplicate"])
    if what == "dims":
        k = rng.randrange(len(t.dims))
        d = t.dims[k]
        t.dims[k] = rng.choice([d + 1, d * 2, d // 2, 0, 1, 2**32, 2**63, 2**64 - 1])
        detail, bad = f"{name} dims -> {t.dims}", t.dims != parts.infos[i].dims
    elif what == "reverse":
        t.dims = t.dims[::-1]
        detail, bad = f"{name} dims -> {t.dims}", t.dims != parts.infos[i].dims
    elif what == "type":
        sizes = gguf.GGML_QUANT_SIZES
        known = {int(q): sizes[q] for q in sizes}
        # only types whose block layout differs (or unknown codes): F16 read as BF16 is no error a reader can see
        codes = [c for c in list(range(45)) + [2**31, 2**32 - 1] if known.get(c) != known.get(t.ttype)]
        t.ttype = rng.choice(codes)
        detail, bad = f"{name} type -> {t.ttype}", True
    elif what == "offset":
        t.offset = rng.choice([o for o in (0, t.offset + p.alignment, t.offset + 1, max(0, t.offset - p.alignment), 2**63,
                                           2**64 - 1, len(p.data)) if o != t.offset] or [t.offset + 1])
        detail, bad = f"{name} offset -> {t.offset}", True
    elif what == "name":
        others = [o.name for o in p.infos if o.name != t.name]
        t.name = rng.choice([b"", b"x", b"\xff\xfe", t.name + b".x", b"a" * 70000, *(others[:1] and [rng.choice(others)])])
        detail, bad = f"{name} renamed {_short(t.name)}", True
    elif what == "n_dims":
        t.n_dims = rng.choice([len(t.dims) + 1, max(len(t.dims) - 1, 0), 0, 5, 2**32 - 1])
        detail, bad = f"{name} n_dims {len(t.dims)} -> {t.n_dims}", True
    else:
        p.infos.insert(rng.randrange(len(p.infos) + 1), Info(t.name, list(t.dims), t.ttype, t.offset))
        detail, bad = f"{name} listed twice", True
    return Damage(f"tensor-{what}", detail, serialize(p), bad, (name, FILE))


def damage(parts: Parts, rng: random.Random, focus: str = "") -> Damage:
    """Any damage; `focus` "vocab" or "rope": damage to the vocabulary or the rope_freqs divisors."""
    from .gguf_damage2 import file_damage

    if focus == "vocab":
        return _value(parts, rng, "tokenizer.") if rng.random() < 0.6 else file_damage(parts, rng, "vocab")
    if focus == "rope":
        return file_damage(parts, rng, "rope")
    r = rng.random()
    if r < 0.30:
        return _value(parts, rng)
    if r < 0.38:
        return _blowup(parts, rng)
    if r < 0.43:
        return _raw_length(parts, rng)
    if r < 0.58:
        return _tensor_info(parts, rng)
    return file_damage(parts, rng)
