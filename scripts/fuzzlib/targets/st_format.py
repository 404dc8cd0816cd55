"""The safetensors format, damaged: an 8-byte little-endian header length, a JSON header
({name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}), then the data
(safetensors' README, "Format"). Each mutation takes (path, rng) and rewrites the file; it
returns (detail, bad). A damage the format forbids is bad; one that leaves a valid file
holding other weights is not (weights are weights)."""

from __future__ import annotations

import json
import math
import random
import struct
from pathlib import Path


def read(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write(path: Path, header: dict, data: bytes, length: int | None = None, text: bytes | None = None) -> None:
    body = text if text is not None else json.dumps(header, allow_nan=True).encode()
    body += b" " * (-len(body) % 8)
    path.write_bytes(struct.pack("<Q", len(body) if length is None else length % 2**64) + body + data)


def _tensors(header: dict) -> list[str]:
    return sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])


def _rewrite(path: Path, change) -> None:
    """Load the file's tensors with safetensors itself, change them, save again (a valid file)."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    meta = read(path)[0].get("__metadata__")
    change(tensors)
    save_file(tensors, str(path), metadata=meta)


# ---- raw damage of the header or the bytes: the format forbids all of these -----------------------

def _length(path, rng):
    header, data = read(path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    new = rng.choice([0, 1, 7, n - 1, n // 2, len(raw), len(raw) + 1000, 2**31, 2**40, 2**63 - 1, 2**64 - 1])
    path.write_bytes(struct.pack("<Q", new) + raw[8:])
    return f"header length {n} -> {new}", new != n


def _json_text(path, rng):
    header, data = read(path)
    text = json.dumps(header).encode()
    choice = rng.choice(["garbage", "list", "null", "string", "cut", "trailing-comma", "not-utf8", "deep"])
    new = {"garbage": b"{not json" + b"x" * 20, "list": b"[1, 2]", "null": b"null", "string": b'"F32"',
           "cut": text[: len(text) // 2], "trailing-comma": text[:-1] + b",}", "not-utf8": text.replace(b'"', b'"\xff', 1),
           "deep": b"[" * 100_000 + b"]" * 100_000}[choice]
    write(path, header, data, text=new)
    return f"header JSON {choice}", True


def _tensor_field(path, rng):
    header, data = read(path)
    name = rng.choice(_tensors(header))
    info = header[name]
    field = rng.choice(["dtype", "shape", "data_offsets", "whole"])
    shape, (b, e) = info["shape"], info["data_offsets"]
    if field == "dtype":
        new = rng.choice(["X99", "F128", "", "f32", 5, None, ["F32"], "I64", "F64", "BOOL", "U8", "F8_E4M3", "F16", "BF16"])
    elif field == "shape":
        new = rng.choice([[-1] + shape[1:], [s + 1 for s in shape], shape[:-1], shape + [1, 2], [2**40, 2**40], [2**63],
                          [], None, "4", [1.5] * len(shape), [str(s) for s in shape], [0] + shape[1:]])
    elif field == "data_offsets":
        new = rng.choice([[b, e + 4], [b + 4, e], [e, b], [-4, e], [b, 2**64], [b], [b, e, e], [str(b), e], None,
                          [b, b], [b, e * 1000 + 10**12]])
    else:
        new = rng.choice([None, [], "x", 1, {}])
    if field == "whole":
        header[name] = new
    else:
        info[field] = new
    write(path, header, data)
    return f"{name}: {field} {json.dumps(info.get(field) if field != 'whole' else None)[:40]} -> {json.dumps(new)[:40]}", True


def _offsets(path, rng):
    header, data = read(path)
    names = _tensors(header)
    kind = rng.choice(["overlap", "gap", "past-end", "swap-unequal"] if len(names) > 1 else ["gap", "past-end"])
    if kind == "overlap":
        a, b = names[0], names[1]
        header[b]["data_offsets"] = [header[a]["data_offsets"][0], header[a]["data_offsets"][0] + header[b]["data_offsets"][1] - header[b]["data_offsets"][0]]
    elif kind == "gap":
        for n in names[len(names) // 2:]:
            header[n]["data_offsets"] = [o + 8 for o in header[n]["data_offsets"]]
        data = data + b"\0" * 8
    elif kind == "past-end":
        last = names[-1]
        header[last]["data_offsets"][1] += 64
    else:
        sized = {}
        for n in names:
            sized.setdefault(header[n]["data_offsets"][1] - header[n]["data_offsets"][0], n)
        a, b = (list(sized.values()) + names)[:2]  # tensors of unequal sizes swap places: neither fits
        if len(sized) > 1:
            header[a]["data_offsets"], header[b]["data_offsets"] = header[b]["data_offsets"], header[a]["data_offsets"]
        else:  # all of one size: the second made to overlap the first
            header[b]["data_offsets"] = list(header[a]["data_offsets"])
    write(path, header, data)
    return f"data_offsets {kind}", True


def _bytes(path, rng):
    raw = path.read_bytes()
    kind = rng.choice(["truncated-data", "truncated-header", "appended", "empty", "7-bytes", "random", "gguf-magic"])
    (n,) = struct.unpack("<Q", raw[:8])
    new = {"truncated-data": raw[: rng.randint(8 + n, len(raw) - 1)], "truncated-header": raw[: rng.randint(8, 8 + n - 1)],
           "appended": raw + bytes(rng.randrange(256) for _ in range(rng.choice([1, 8, 4096]))), "empty": b"",
           "7-bytes": raw[:7], "random": bytes(rng.randrange(256) for _ in range(4096)), "gguf-magic": b"GGUF" + raw[4:]}[kind]
    path.write_bytes(new)
    return kind, True


def _metadata(path, rng):
    header, data = read(path)
    new = rng.choice([[], None, 5, {"format": 5}, {"format": None}, {"a": {"b": "c"}}, {"format": ["pt"]}, "pt"])
    header["__metadata__"] = new
    write(path, header, data)
    return f"__metadata__ -> {json.dumps(new)}", True


RAW = {"length": _length, "json": _json_text, "field": _tensor_field, "offsets": _offsets, "bytes": _bytes, "metadata": _metadata}


# ---- valid files holding other tensors: refused (bad) or not, by what the model needs ----------------

# kind: (bad, the outputs must equal the undamaged input's). drop: a tensor the model needs is
# missing; extra/rename: one it has no place for (or one missing); reshape/transpose: the wrong
# shape; nan/inf: weights that make the outputs non-finite (a diverged run or a broken download:
# refused, or harmless where no output reads them); integers, and FP8 with no scale, are no float
# weight. A float dtype or a perturbed value is a valid checkpoint of other weights; metadata and
# header padding change no tensor.
TENSOR_KINDS = {"drop": (True, False), "extra": (True, False), "rename": (True, False), "reshape": (True, False),
                "transpose": (True, False), "nan": (True, False), "inf": (True, False), "dtype-float": (False, False),
                "dtype-int": (True, False), "fp8": (True, False), "perturb": (False, False), "meta-benign": (False, True),
                "meta-huge": (False, True), "pad-header": (False, True), "duplicate": (True, False)}


def tensor_names(path: Path) -> list[str]:
    return _tensors(read(path)[0])


def duplicate(path: Path, name: str, source: Path) -> None:
    """A second copy of `name` (from `source`) in another file: in `path` when that is another
    shard, else in a new file beside it. Which one holds the model's weight is anyone's guess."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as f:
        t = f.get_tensor(name)
    if source.name == path.name:
        save_file({name: t}, str(path.with_name("model-extra.safetensors")), metadata={"format": "pt"})
    else:
        _rewrite(path, lambda tensors: tensors.update({name: t}))


def tensor_change(path: Path, kind: str, name: str, rng: random.Random) -> None:
    """Rewrite `path` as a valid safetensors file, its tensor `name` changed as `kind` says (TENSOR_KINDS)."""
    import torch
    if kind in ("meta-benign", "meta-huge", "pad-header"):  # same tensors: the outputs must not change
        h, data = read(path)
        if kind == "pad-header":
            write(path, h, data, text=json.dumps(h).encode() + b" " * rng.choice([8, 4096]))
        else:
            h["__metadata__"] = {**(h.get("__metadata__") or {}), "note": "x" * (1 << 20 if kind == "meta-huge" else 3),
                                 "format": "pt"}
            write(path, h, data)
        return

    def change(t: dict) -> None:
        x = t[name]
        if kind == "drop":
            del t[name]
        elif kind == "extra":
            t[name + "_extra"] = x.clone()
        elif kind == "rename":
            t["zz." + name] = t.pop(name)
        elif kind == "reshape":
            t[name] = torch.zeros(*[s + 1 for s in x.shape]) if x.dim() else torch.zeros(2)
        elif kind == "transpose":
            t[name] = x.reshape(*reversed(x.shape)).clone() if x.dim() > 1 and len(set(x.shape)) > 1 else torch.zeros(*x.shape, 2)
        elif kind in ("nan", "inf"):
            y = x.clone().reshape(-1)
            y[rng.randrange(y.numel())] = math.nan if kind == "nan" else rng.choice([math.inf, -math.inf])
            t[name] = y.reshape(x.shape)
        elif kind == "dtype-float":
            t[name] = x.to(rng.choice([torch.float16, torch.bfloat16, torch.float64]))
        elif kind == "dtype-int":
            t[name] = x.to(rng.choice([torch.int32, torch.int64, torch.bool, torch.uint8, torch.int8]))
        elif kind == "fp8":
            t[name] = x.to(torch.float8_e4m3fn)
        else:
            y = x.clone().reshape(-1)
            y[rng.randrange(y.numel())] += 0.5
            t[name] = y.reshape(x.shape)

    _rewrite(path, change)
